/* Calls through every kind of x86-64 PLT stub, for tests/coripper/test_plt_x86_64.py: the test
   stops the program (gdb breakpoints) inside the stubs and compares backtraces with gdb's.
   - getpid: a lazy .plt entry (or a .plt.sec entry when linked with -z ibtplt);
   - getppid: its address is also loaded from the GOT (GLOB_DAT), so ld sends calls through
     .plt.got;
   - pick_answer: a local ifunc, called through a PLT entry with an IRELATIVE relocation
     (BFD names it "*ABS*+0x<resolver>@plt"). */
#include <stdio.h>
#include <unistd.h>

static int answer(void) { return 42; }

static int (*resolve_answer(void))(void) { return answer; }

int pick_answer(void) __attribute__((ifunc("resolve_answer")));

__attribute__((noinline)) pid_t (*getppid_address(void))(void)
{
    return getppid;
}

int main(void)
{
    pid_t a = getpid();
    pid_t b = getppid();
    int c = pick_answer();
    printf("%d %d %d %d\n", (int)a, (int)b, c, getppid_address() == getppid);
    return 0;
}
