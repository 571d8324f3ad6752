/* deep_recursion: recurses DEPTH calls deep (argv[1], default 200), then writes through a NULL
 * pointer. Written for this project (tests/coripper/test_unwind.py); the volatile pointer keeps
 * the compiler from deleting the faulting store, which it may do for a literal NULL. */
#include <stdlib.h>

int *volatile null_ptr;

__attribute__((noinline)) int descend(int depth) {
    if (depth <= 0) { *null_ptr = 1; return 0; }
    return descend(depth - 1) + 1;
}

int main(int argc, char **argv) { return descend(argc > 1 ? atoi(argv[1]) : 200); }
