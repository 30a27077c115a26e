/* Durations, sizes and addresses: the forms operators write and the
 * mistakes they make. */
#include <stdint.h>

#include "core/error.h"
#include "tap.h"
#include "core/units.h"

static void durations(void) {
  char err[256];
  int64_t ns = -1;
  is_int(sl_duration_parse("500ms", &ns, err, sizeof err), 0, "500ms parses");
  is_int(ns, 500000000LL, "500ms is 5e8 ns");
  is_int(sl_duration_parse("10s", &ns, err, sizeof err), 0, "10s parses");
  is_int(ns, 10000000000LL, "10s");
  is_int(sl_duration_parse("5m", &ns, err, sizeof err), 0, "5m parses");
  is_int(ns, 300000000000LL, "5m");
  is_int(sl_duration_parse("1h30m", &ns, err, sizeof err), 0, "compound 1h30m");
  is_int(ns, 5400000000000LL, "1h30m");
  is_int(sl_duration_parse("0s", &ns, err, sizeof err), 0, "0s parses");
  is_int(ns, 0, "0s is zero");

  is_int(sl_duration_parse("10", &ns, err, sizeof err), SL_EUNIT, "missing unit rejected");
  is_str(err, "duration \"10\" has no unit (use ns, us, ms, s, m, h or d)", "missing unit message");
  is_int(sl_duration_parse("10sec", &ns, err, sizeof err), SL_EUNIT, "unknown unit rejected");
  is_int(sl_duration_parse("-5s", &ns, err, sizeof err), SL_ERANGE, "negative rejected");
  is_str(err, "duration \"-5s\" is negative", "negative message");
  is_int(sl_duration_parse("99999999999999999999s", &ns, err, sizeof err), SL_ERANGE,
         "u64 overflow rejected");
  is_int(sl_duration_parse("9999999999999d", &ns, err, sizeof err), SL_ERANGE,
         "multiplication overflow rejected");
  is_int(sl_duration_parse("", &ns, err, sizeof err), SL_ESYNTAX, "empty rejected");
  is_int(sl_duration_parse("s", &ns, err, sizeof err), SL_ESYNTAX, "unit without number rejected");
  is_int(sl_duration_parse("1.5s", &ns, err, sizeof err), SL_ESYNTAX, "fraction rejected");

  char buf[32];
  sl_duration_format(5400000000000LL, buf, sizeof buf);
  is_str(buf, "90m", "format picks the largest exact unit");
  sl_duration_format(1500000000LL, buf, sizeof buf);
  is_str(buf, "1500ms", "format 1.5s");
}

static void sizes(void) {
  char err[256];
  uint64_t b = 0;
  is_int(sl_size_parse("64KiB", &b, err, sizeof err), 0, "64KiB");
  is_int(b, 65536, "64KiB bytes");
  is_int(sl_size_parse("8MiB", &b, err, sizeof err), 0, "8MiB");
  is_int(b, 8388608, "8MiB bytes");
  is_int(sl_size_parse("1GB", &b, err, sizeof err), 0, "1GB");
  is_int(b, 1000000000, "1GB is decimal");
  is_int(sl_size_parse("8m", &b, err, sizeof err), 0, "fluentd 8m");
  is_int(b, 8388608, "fluentd m is MiB");
  is_int(sl_size_parse("1.5KiB", &b, err, sizeof err), 0, "fraction");
  is_int(b, 1536, "1.5KiB");
  is_int(sl_size_parse("100", &b, err, sizeof err), SL_EUNIT, "missing unit rejected");
  is_int(sl_size_parse("10XB", &b, err, sizeof err), SL_EUNIT, "unknown unit rejected");
  is_int(sl_size_parse("-1MiB", &b, err, sizeof err), SL_ERANGE, "negative rejected");
  is_int(sl_size_parse("20000000TiB", &b, err, sizeof err), SL_ERANGE, "overflow rejected");
  is_str(err, "size \"20000000TiB\" is too large", "overflow message");
  char buf[32];
  sl_size_format(8388608, buf, sizeof buf);
  is_str(buf, "8MiB", "format 8MiB");
  sl_size_format(1000, buf, sizeof buf);
  is_str(buf, "1000B", "format odd size in bytes");
}

static void addresses(void) {
  char err[256], buf[300];
  sl_addr_t a;
  is_int(sl_addr_parse("0.0.0.0:24224", &a, err, sizeof err), 0, "ipv4 any");
  is_int(a.kind, SL_ADDR_TCP, "tcp kind");
  is_str(a.host, "0.0.0.0", "ipv4 host");
  is_int(a.port, 24224, "ipv4 port");
  is_int(sl_addr_parse("[::1]:24224", &a, err, sizeof err), 0, "ipv6 loopback");
  is_str(a.host, "::1", "ipv6 host without brackets");
  sl_addr_format(&a, buf, sizeof buf);
  is_str(buf, "[::1]:24224", "ipv6 formatted with brackets");
  is_int(sl_addr_parse("[::]:0", &a, err, sizeof err), 0, "port 0 allowed");
  is_int(sl_addr_parse("/run/sluice/fwd.sock", &a, err, sizeof err), 0, "unix path");
  is_int(a.kind, SL_ADDR_UNIX, "unix kind");
  is_str(a.path, "/run/sluice/fwd.sock", "unix path kept");
  is_int(sl_addr_parse("unix:/tmp/x.sock", &a, err, sizeof err), 0, "unix: prefix");
  is_str(a.path, "/tmp/x.sock", "unix: prefix stripped");
  is_int(sl_addr_parse("localhost:9092", &a, err, sizeof err), 0, "host name");

  is_int(sl_addr_parse("0.0.0.0:70000", &a, err, sizeof err), SL_EADDR, "port > 65535 rejected");
  is_str(err, "address \"0.0.0.0:70000\" has a bad port (expected 0-65535)", "bad port message");
  is_int(sl_addr_parse("0.0.0.0:http", &a, err, sizeof err), SL_EADDR, "named port rejected");
  is_int(sl_addr_parse("0.0.0.0", &a, err, sizeof err), SL_EADDR, "missing port rejected");
  is_int(sl_addr_parse("0.0.0.0:", &a, err, sizeof err), SL_EADDR, "empty port rejected");
  is_int(sl_addr_parse("::1:24224", &a, err, sizeof err), SL_EADDR, "bare ipv6 rejected");
  is_int(sl_addr_parse("[::1:24224", &a, err, sizeof err), SL_EADDR, "unclosed bracket rejected");
  is_int(sl_addr_parse("[::1]24224", &a, err, sizeof err), SL_EADDR, "bracket without colon");
  is_int(sl_addr_parse(":24224", &a, err, sizeof err), SL_EADDR, "empty host rejected");
  is_int(sl_addr_parse("0.0.0.0:-1", &a, err, sizeof err), SL_EADDR, "negative port rejected");
}

int main(void) {
  durations();
  sizes();
  addresses();
  return tap_done();
}
