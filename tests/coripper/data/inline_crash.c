/* Test program for coripper/inline.py (tests/coripper/test_inline.py), written for this project.
 * Crashes (SIGSEGV, a store through argv-derived NULL) inside functions inlined three deep, or
 * at the end of a chain of tail calls. Also compiles as C++ (names get linkage names).
 *   inline_crash inline   crash in level3 <- level2 <- level1, all inlined into crash_here
 *   inline_crash tail     crash in tail_leaf, reached by tail_top -> (jmp) tail_mid -> (jmp)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile int sink;

#ifdef __cplusplus
namespace deep {
#endif
static inline __attribute__((always_inline)) void level3(int *p)
{
    if (sink > 1000)            /* a cold path: splits the inlined code into several ranges */
        printf("unlikely %d\n", sink);
    *p = 42;
}

static inline __attribute__((always_inline)) void level2(int *p)
{
    sink++;
    level3(p);
    sink++;
}

static inline __attribute__((always_inline)) void level1(int *p)
{
    level2(p);
    sink++;
}
#ifdef __cplusplus
}
using namespace deep;
#endif

__attribute__((noinline)) void crash_here(int *p)
{
    level1(p);
    sink++;
}

__attribute__((noinline)) void tail_leaf(int *p)
{
    sink++;
    *p = 7;
    sink++;
}

__attribute__((noinline)) void tail_mid(int *p)
{
    sink += 2;
    tail_leaf(p);               /* a tail call at -O2: jmp */
}

__attribute__((noinline)) void tail_top(int *p)
{
    sink += 3;
    tail_mid(p);                /* a tail call at -O2: jmp */
}

int main(int argc, char **argv)
{
    int *p = (int *)(argc > 5 ? (void *)argv : NULL);
    if (argc > 1 && strcmp(argv[1], "tail") == 0)
        tail_top(p);
    else
        crash_here(p);
    return sink;                /* keeps the calls above from being tail calls */
}
