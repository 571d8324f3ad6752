// throw: C++ program that dies of an uncaught exception (std::terminate -> abort).
// Written for this project; built by tests/conftest.py.
#include <stdexcept>

__attribute__((noinline)) void parse_config(int x) {
    if (x > 0) throw std::runtime_error("bad config");
}
__attribute__((noinline)) void load_settings(int x) { parse_config(x); }

int main(int argc, char **) {
    load_settings(argc);
    return 0;
}
