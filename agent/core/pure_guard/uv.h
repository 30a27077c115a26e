/* Build guard: this folder is first on the include path of the pure library
 * (libsluice_pure), so a pure module that includes an event-loop or Kafka
 * header fails to compile.  Pure modules compute; I/O lives elsewhere. */
#error "a pure module must not include uv.h: move the I/O part out of the pure library"
