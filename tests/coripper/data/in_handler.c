/* in_handler: crashes inside a signal handler, so the core's stack holds a signal frame
 * (__restore_rt). Written for this project (tests/coripper/test_unwind.py). */
#include <signal.h>
#include <string.h>

int *volatile null_ptr;

__attribute__((noinline)) void handler_fault(void) { *null_ptr = 1; }
__attribute__((noinline)) void on_usr1(int sig) { (void)sig; handler_fault(); }
__attribute__((noinline)) void send_usr1(void) { raise(SIGUSR1); }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    send_usr1();
    return 1;
}
