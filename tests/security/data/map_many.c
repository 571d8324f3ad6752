/* map_many: maps one file many times, then dies of SIGSEGV, for the minimizer's
 * many-mappings tests and bench (issue 15, finding 2).
 *
 * usage: map_many FILE COUNT [THREADS]
 *   FILE: mapped COUNT times, PROT_READ, MAP_PRIVATE, at file offset 0 (so no two mappings
 *         merge into one VMA, and every one is an NT_FILE entry of its own); an ELF file makes
 *         the kernel dump each mapping's first page as well (coredump_filter bit 4)
 *   COUNT: mappings to make; 0 = until mmap fails (vm.max_map_count)
 *   THREADS: extra threads, each blocked in thread_wait_forever() before the crash
 * Prints the number of mappings made, then writes through a NULL pointer 3 calls deep.
 * Written for this project; built by tests/security/test_minimizer_many_mappings.py and
 * bench/coripper_many_mappings.py.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_barrier_t ready;
static volatile int sink;
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

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: map_many FILE COUNT [THREADS]\n");
        return 2;
    }
    long count = atol(argv[2]);
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    /* threads first: their stacks are mappings too, and none is left once the cap is hit */
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker_main, NULL) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    pthread_barrier_wait(&ready);
    long made = 0;
    while (count == 0 || made < count) {
        if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
            break;
        made++;
    }
    printf("%ld\n", made);
    fflush(stdout);
    crash_level1(null_pointer);
    return 0;
}
