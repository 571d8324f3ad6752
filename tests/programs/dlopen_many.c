/* dlopen_many: dlopen()s every shared object named on the command line, calls each one's
 * `lib_entry` once, then dies with SIGSEGV. tests/conftest.py generates the libraries.
 * Written for this project. */
#include <dlfcn.h>
#include <stdio.h>

int *volatile null_pointer;  /* volatile: the compiler cannot delete or trap the store */

__attribute__((noinline)) void crash_after_loading(void) { *null_pointer = 1; }

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 3; }
        int (*entry)(void) = (int (*)(void))dlsym(h, "lib_entry");
        if (entry) entry();
    }
    crash_after_loading();
    return 1;
}
