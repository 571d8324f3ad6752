/* crasher: a test program that dies in a chosen way, for crashkit's tests and benches.
 *
 * usage: crasher MODE [-t THREADS] [-m HEAP_MIB] [-d DEPTH]
 *   MODE: segv (NULL write 3 calls deep), abort (abort() in libc), recurse (segv at DEPTH),
 *         overflow (unbounded recursion into the guard page), fpe (integer divide by zero),
 *         sleep (block forever, for gcore), exit (exit 0)
 *   -t: extra threads, each blocked in its own named function before the crash
 *   -m: MiB of heap to allocate and touch
 * Written for this project; built by tests/conftest.py.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t ready;
static volatile int sink;
/* Read through a volatile so the compiler cannot see the NULL and delete or trap the store. */
int *volatile null_pointer;

__attribute__((noinline)) static void thread_wait_forever(void) {
    for (;;) pause();
}
__attribute__((noinline)) static void *worker_main(void *arg) {
    (void)arg;
    pthread_barrier_wait(&ready);
    thread_wait_forever();
    return NULL;
}

__attribute__((noinline)) void crash_write_null(int *p) { *p = 42; }
__attribute__((noinline)) void crash_level2(int *p) { crash_write_null(p); sink++; }
__attribute__((noinline)) void crash_level1(int *p) { crash_level2(p); sink++; }

__attribute__((noinline)) int recurse_then_crash(int depth) {
    if (depth <= 0) { crash_write_null(null_pointer); return 0; }
    return recurse_then_crash(depth - 1) + 1;
}

__attribute__((noinline)) int overflow_stack(int n) {
    volatile char pad[256];
    pad[0] = (char)n;
    return overflow_stack(n + 1) + pad[0];
}

__attribute__((noinline)) int divide(int a, int b) { return a / b; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: crasher MODE [-t N] [-m MIB] [-d DEPTH]\n"); return 2; }
    const char *mode = argv[1];
    int threads = 0, depth = 100;
    long heap_mib = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-m")) heap_mib = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-d")) depth = atoi(argv[i + 1]);
    }
    if (heap_mib > 0) {
        size_t n = (size_t)heap_mib << 20;
        char *heap = malloc(n);
        if (!heap) return 3;
        for (size_t off = 0; off < n; off += 4096) heap[off] = (char)off | 1;
    }
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker_main, NULL)) return 4;
    }
    pthread_barrier_wait(&ready);
    if (!strcmp(mode, "segv")) crash_level1(null_pointer);
    else if (!strcmp(mode, "abort")) abort();
    else if (!strcmp(mode, "recurse")) recurse_then_crash(depth);
    else if (!strcmp(mode, "overflow")) overflow_stack(0);
    else if (!strcmp(mode, "fpe")) sink = divide(1, sink - sink);
    else if (!strcmp(mode, "sleep")) { printf("ready\n"); fflush(stdout); thread_wait_forever(); }
    else if (!strcmp(mode, "exit")) return 0;
    else { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
    return 1;
}
