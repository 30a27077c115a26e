/* The option tables of every config section.  This file is the single
 * source for validation, `sluice check --print` and the README's config
 * reference; edit a table here and regenerate the reference with
 * `sluice reference`. */
#include "config_schema.h"

#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)
#define MS 1000000LL
#define SEC 1000000000LL
#define END {0}

static const sl_opt_t log_opts[] = {
    {"level", SL_OPT_ENUM, "\"info\"", NULL, 0, 0, "error|warn|info|debug", 0, NULL,
     "Lowest level written to stderr."},
    {"format", SL_OPT_ENUM, "\"text\"", NULL, 0, 0, "text|json", 0, NULL,
     "Log line format: human-readable text or one JSON object per line."},
    END,
};
static const sl_section_t log_section = {"log", 0, log_opts, NULL, "Logging to stderr (journald picks it up under systemd)."};

static const sl_opt_t http_opts[] = {
    {"enabled", SL_OPT_BOOL, "true", NULL, 0, 0, NULL, 0, NULL,
     "Serve /metrics (Prometheus), /healthz and /readyz."},
    {"listen", SL_OPT_ADDR, "\"127.0.0.1:24231\"", NULL, 0, 0, NULL, 0, NULL,
     "Address of the HTTP endpoint. Port 0 picks a free port (logged at start)."},
    END,
};
static const sl_section_t http_section = {"http", 0, http_opts, NULL, "The operator's HTTP endpoint."};

static const sl_opt_t user_opts[] = {
    {"username", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL, "User name sent in PING."},
    {"password", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED | SL_OPT_SECRET, NULL,
     "The user's password."},
    END,
};
static const sl_section_t users_section = {"users", SL_SECTION_ARRAY, user_opts, NULL,
                                           "Users for user authentication (`[[input.forward.security.users]]`)."};

static const sl_opt_t security_opts[] = {
    {"shared_key", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_SECRET, NULL,
     "Shared key of the HELO/PING/PONG handshake. When set, every connection must authenticate."},
    {"self_hostname", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL,
     "Host name sent in PONG; defaults to the machine's host name."},
    {"user_auth", SL_OPT_BOOL, "false", NULL, 0, 0, NULL, 0, NULL,
     "Also require a username and password from `users`."},
    {"allow_anonymous_source", SL_OPT_BOOL, "true", NULL, 0, 0, NULL, 0, NULL,
     "Accept clients from any address (client allow-lists are not implemented)."},
    END,
};
static const sl_section_t *const security_children[] = {&users_section, NULL};
static const sl_section_t security_section = {"security", 0, security_opts, security_children,
                                              "Forward protocol authentication."};

static const sl_opt_t tls_opts[] = {
    {"cert_file", SL_OPT_STRING, NULL, "path", 0, 0, NULL, 0, NULL, "PEM certificate chain."},
    {"key_file", SL_OPT_STRING, NULL, "path", 0, 0, NULL, 0, NULL, "PEM private key."},
    {"key_passphrase", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_SECRET, NULL,
     "Passphrase of the private key."},
    END,
};
static const sl_section_t tls_section = {"tls", 0, tls_opts, NULL,
                                         "TLS for the forward input. Not implemented in this version: "
                                         "`sluice check` rejects a config that sets it."};

static const sl_opt_t forward_opts[] = {
    {"enabled", SL_OPT_BOOL, "true", NULL, 0, 0, NULL, 0, NULL, "Run the forward input."},
    {"listen", SL_OPT_ADDR_LIST, "[\"0.0.0.0:24224\"]", NULL, 0, 0, NULL, 0, NULL,
     "TCP addresses and unix socket paths to accept forward connections on. A UDP heartbeat "
     "socket listens on every TCP address."},
    {"chunk_size_limit", SL_OPT_SIZE, "\"8MiB\"", "bytes", 1 * KiB, 1 * GiB, NULL, 0, NULL,
     "Largest message accepted. A larger one is dropped without ack and the connection closed."},
    {"chunk_size_warn_limit", SL_OPT_SIZE, "\"4MiB\"", "bytes", 1 * KiB, 1 * GiB, NULL, 0, NULL,
     "Messages larger than this are accepted with a warning."},
    {"decompression_size_limit", SL_OPT_SIZE, "\"64MiB\"", "bytes", 1 * KiB, 4 * GiB, NULL, 0, NULL,
     "Largest decompressed CompressedPackedForward payload; larger ones are rejected as gzip bombs."},
    {"max_depth", SL_OPT_INT, "32", NULL, 2, 32, NULL, 0, NULL,
     "Deepest nesting of arrays and maps in a message."},
    {"max_connections", SL_OPT_INT, "1024", NULL, 1, 1000000, NULL, 0, NULL,
     "Connections beyond this are closed at accept."},
    {"idle_timeout", SL_OPT_DURATION, "\"5m\"", "duration", 1 * SEC, 0, NULL, 0, NULL,
     "A connection that sends nothing for this long is closed."},
    {"skip_invalid_event", SL_OPT_BOOL, "true", NULL, 0, 0, NULL, 0, NULL,
     "Skip (and count) an entry whose time or record has the wrong type; false rejects the whole message."},
    {"tag_prefix", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL,
     "Prepended to every tag, with a dot: `tag_prefix = \"edge\"` turns `app.web` into `edge.app.web`."},
    {"source_address_key", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL,
     "Record key under which the client's IP address is added."},
    {"source_hostname_key", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL,
     "Record key under which the client's host name (reverse DNS, else its address) is added."},
    {"deny_keepalive", SL_OPT_BOOL, "false", NULL, 0, 0, NULL, 0, NULL,
     "Close the connection after each message (after its ack when one is asked for)."},
    END,
};
static const sl_section_t *const forward_children[] = {&security_section, &tls_section, NULL};
static const sl_section_t forward_section = {"forward", 0, forward_opts, forward_children,
                                             "The fluentd Forward Protocol v1 input."};
static const sl_section_t *const input_children[] = {&forward_section, NULL};
static const sl_section_t input_section = {"input", 0, NULL, input_children, "Inputs."};

static const sl_opt_t kafka_opts[] = {
    {"brokers", SL_OPT_STRING_LIST, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL,
     "Bootstrap brokers (`host:port`), or `\"embedded\"` for an in-process mock cluster that keeps "
     "nothing across restarts (demo and trials only)."},
    {"client_id", SL_OPT_STRING, "\"sluice\"", NULL, 0, 0, NULL, 0, NULL, "Kafka client.id."},
    {"default_topic", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL,
     "Topic for records whose tag matches no route. Unset: such records are counted and dropped."},
    {"embedded_partitions", SL_OPT_INT, "3", NULL, 1, 64, NULL, 0, NULL,
     "Partitions of each topic created in the embedded cluster."},
    {"resume_below", SL_OPT_FLOAT, "0.5", "fraction", 0, 0, NULL, 0, NULL,
     "After the producer queue filled up, reading from clients resumes when it is below this "
     "fraction of `queue.buffering.max.messages`."},
    {"properties", SL_OPT_MAP, NULL, NULL, 0, 0, NULL, 0, NULL,
     "librdkafka properties passed verbatim (security.protocol, sasl.*, ssl.*, compression.type, "
     "linger.ms, ...). They override the defaults: acks=all, enable.idempotence=true, "
     "compression.type=lz4, queue.buffering.max.messages=100000, queue.buffering.max.kbytes=262144, "
     "message.timeout.ms=0 (never give up). `acks` other than all and `delivery.report.only.error = true` "
     "are refused: acks to clients depend on them."},
    END,
};
static const sl_section_t kafka_section = {"kafka", 0, kafka_opts, NULL,
                                           "The Kafka cluster. Without this section, the forward input "
                                           "writes records to stdout as JSON lines (print mode)."};

static const sl_opt_t route_opts[] = {
    {"match", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL,
     "fluentd tag patterns separated by spaces: `*` one part, `**` zero or more parts, `{a,b}` "
     "alternatives."},
    {"topic", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL,
     "Topic name, or a template: `${tag}`, `${tag_parts[N]}` (negative N counts from the end), "
     "`${record.field.path}`."},
    {"format", SL_OPT_ENUM, "\"json\"", NULL, 0, 0, "json|msgpack", 0, NULL, "Kafka message value format."},
    {"key", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL,
     "Record field path (`user_id`, `http.host`) whose value is the Kafka message key."},
    {"tag_key", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL, "Record key the tag is added under."},
    {"time_key", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL, "Record key the event time is added under."},
    {"time_format", SL_OPT_ENUM, "\"epoch\"", NULL, 0, 0, "epoch|rfc3339", 0, NULL,
     "How `time_key` is written: epoch seconds as a float, or RFC 3339 with nanoseconds."},
    END,
};
static const sl_section_t route_section = {"route", SL_SECTION_ARRAY, route_opts, NULL,
                                           "Tag routes to Kafka topics; the first match wins."};

static const sl_opt_t window_opts[] = {
    {"type", SL_OPT_ENUM, NULL, NULL, 0, 0, "tumbling|hopping|session", SL_OPT_REQUIRED, NULL, "Window kind."},
    {"size", SL_OPT_DURATION, NULL, "duration", 1 * MS, 0, NULL, 0, NULL, "Window length (tumbling, hopping)."},
    {"advance", SL_OPT_DURATION, NULL, "duration", 1 * MS, 0, NULL, 0, NULL, "Hop (hopping)."},
    {"gap", SL_OPT_DURATION, NULL, "duration", 1 * MS, 0, NULL, 0, NULL, "Inactivity gap (session)."},
    END,
};
static const sl_section_t window_schema = {"window", 0, window_opts, NULL, "Window definition."};

static const sl_opt_t job_opts[] = {
    {"name", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL, "Job name, part of every result id."},
    {"topics", SL_OPT_STRING_LIST, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL, "Source topics."},
    {"where", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, 0, NULL, "Filter expression."},
    {"group_by", SL_OPT_STRING_LIST, "[]", NULL, 0, 0, NULL, 0, NULL, "Group key fields."},
    {"window", SL_OPT_TABLE, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, &window_schema,
     "`{ type = \"tumbling\", size = \"10s\" }`; hopping adds `advance`, session uses `gap`."},
    {"time", SL_OPT_ENUM, "\"event\"", NULL, 0, 0, "event|processing", 0, NULL, "Which clock assigns windows."},
    {"allowed_lateness", SL_OPT_DURATION, "\"0s\"", "duration", 0, 0, NULL, 0, NULL,
     "How long after a window's end late records still update it."},
    {"aggregates", SL_OPT_MAP, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL,
     "Output field = aggregate expression (count, sum, min, max, avg, first, last, "
     "count_distinct, percentile)."},
    {"sinks", SL_OPT_STRING_LIST, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL, "Names of `[[sink]]`s."},
    {"max_keys", SL_OPT_INT, "100000", NULL, 1, 100000000, NULL, 0, NULL, "Group keys kept per window."},
    END,
};
static const sl_section_t job_section = {"job", SL_SECTION_ARRAY, job_opts, NULL,
                                         "Windowed aggregation jobs (the jobs stage is not in this "
                                         "version yet: jobs are validated, not run)."};

static const sl_opt_t sink_opts[] = {
    {"name", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL, "Name jobs refer to."},
    {"plugin", SL_OPT_STRING, NULL, NULL, 0, 0, NULL, SL_OPT_REQUIRED, NULL,
     "Plugin to load (`redis` loads redis.so from `plugin_dirs`). Other keys go to the plugin."},
    END,
};
static const sl_section_t sink_section = {"sink", SL_SECTION_ARRAY | SL_SECTION_OPEN, sink_opts, NULL,
                                          "Sinks for job results (plugins)."};

static const sl_opt_t root_opts[] = {
    {"plugin_dirs", SL_OPT_STRING_LIST, "[]", NULL, 0, 0, NULL, 0, NULL,
     "Folders searched for sink plugins, before the installed plugin folder."},
    END,
};
static const sl_section_t *const root_children[] = {
    &log_section, &http_section, &input_section, &kafka_section,
    &route_section, &job_section, &sink_section, NULL,
};
const sl_section_t sl_schema_root = {"", 0, root_opts, root_children, "Top level."};
