/* backend_list.h: every backend mlc-bench knows, the one list the build and the code read.
 *
 * X(name): the backend's name as users type it. A built backend defines
 * `const mlc_backend_vt mlc_backend_<name>` in kernels/<name>/; the Makefile reads the names
 * from this file (one X(...) per line) and builds those it finds sources and a toolchain for. */
#ifndef MLC_BACKEND_LIST_H
#define MLC_BACKEND_LIST_H

#define MLC_BACKEND_LIST(X) \
    X(cpu)                  \
    X(cuda)                 \
    X(hip)                  \
    X(vulkan)               \
    X(opencl)

#endif
