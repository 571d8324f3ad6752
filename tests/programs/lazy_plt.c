/* lazy_plt: a worker thread making the first, lazily bound calls of two libc functions, for a
 * debugger to stop it in the PLT stub, PLT0 or ld.so's lazy resolver and make it crash there
 * (tests/coripper/test_aarch64_lazy.py). Built without -z now and run without LD_BIND_NOW.
 *
 * main and the worker meet at a barrier (binding pthread_barrier_wait before either waits), then
 * main waits forever on a second barrier: from then on only the worker goes through the PLT.
 * call_small has a 16-byte frame (x29, x30), call_big a larger one with the frame record at its
 * bottom, as GCC lays out aarch64 frames: the two shapes unwind differently through the
 * resolver's CFI (see docs/backtrace.md).
 * Written for this project.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

static pthread_barrier_t start, never;
volatile long sink;

__attribute__((noinline)) void call_small(void) { sink += getppid(); }

__attribute__((noinline)) void call_big(void) {
    volatile long pad[6];
    for (int i = 0; i < 6; i++) pad[i] = 0x1100 + i;
    sink += getpid() + pad[0];
}

__attribute__((noinline)) void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&start);
    call_small();
    call_big();
    pthread_barrier_wait(&never);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_barrier_init(&start, NULL, 2);
    pthread_barrier_init(&never, NULL, 3);   /* never complete: both threads park here */
    if (pthread_create(&t, NULL, worker, NULL)) return 4;
    pthread_barrier_wait(&start);
    pthread_barrier_wait(&never);
    return 0;
}
