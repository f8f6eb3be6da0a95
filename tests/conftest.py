"""pytest set-up shared by every test file.

The memory tests measure peak allocator memory, which TensorFlow 2.21's default
CPU allocator does not count on every machine; the mains ask for a counting
allocator themselves (`common.memory.request_allocator_stats`), and so does the
test process here, before any test module imports TensorFlow. Likewise the
classification and ODE mains ask for TensorFlow's oneDNN kernels, which
TensorFlow leaves off on some x86 CPUs (`common.machine.request_onednn`), and so
does the test process, so the tests exercise the kernels the mains run (the
grouped-convolution inner loop among them). Tests that need the plain
environment (no such variable) start a subprocess without it.
"""

from common import machine, memory

memory.request_allocator_stats()
machine.request_onednn()
