"""pytest set-up shared by every test file.

The memory tests measure peak allocator memory, which TensorFlow 2.21's default
CPU allocator does not count on every machine; the mains ask for a counting
allocator themselves (`common.memory.request_allocator_stats`), and so does the
test process here, before any test module imports TensorFlow. Tests that need
the plain environment (no such variable) start a subprocess without it.
"""

from common import memory

memory.request_allocator_stats()
