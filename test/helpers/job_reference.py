"""An independent Python model of sluice's jobs, shared by the tests that
check the C engine against it (`sluice job test` in test_job_test.py, the
daemon's jobs stage end to end in test_jobs_pipeline.py): a deterministic
record generator, the windows (tumbling, hopping, session) with watermark
and allowed lateness, the aggregates, and the comparison of result rows
with the error each sketch is allowed.

A job is described by a dict: kind ("tumbling" | "hopping" | "session"),
size/advance or gap and lateness (ms), keys (group-key paths), where (a
predicate on the record) and aggs ({name: (fn, field[, q])} with fn one of
count, countf (count(field)), sum, min, max, avg, first, last, distinct,
pct)."""
import math
import random
from datetime import datetime, timezone

BASE_MS = 1_700_000_000_000


def rfc3339(ms):
    d = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def parse_rfc3339(text):
    """Milliseconds since the epoch of a row's window_start/window_end."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000
               + 0.5)


def generate(n=3000, seed=7, svcs="abc", jitter=2000, late_every=101, late_at=50, late_by=60000, distinct=False,
             mixed=False):
    """[(event time ms, record)] in sending order: one record every 137 ms
    on average, each moved by up to +-jitter ms; record i with
    i % late_every == late_at is moved late_by ms back (beyond every job's
    lateness).  About 20 % have no `req` (a missing nested group key); `lat`
    is mostly an integer, sometimes null, the string "12" or absent.

    distinct: no two records share an event time (so first/last do not
    depend on the arrival order of equal times).  mixed: more types and
    holes: `lat` sometimes a float or a bool, `status` sometimes a string,
    `user` sometimes absent; and every record carries its time as `ts`
    (epoch ms, always) and `at` (RFC 3339).  The defaults give the records
    test_job_test.py has always used."""
    rnd = random.Random(seed)
    base = BASE_MS
    out = []
    used = set()
    for i in range(n):
        ts = base + i * 137 + rnd.randint(-jitter, jitter)
        if i % late_every == late_at:
            ts -= late_by
        if distinct:
            while ts in used:
                ts += 1
            used.add(ts)
        rec = {"ts": ts, "svc": rnd.choice(svcs), "status": rnd.choice([200, 404, 500, 503]),
               "user": "u%d" % rnd.randrange(40)}
        if rnd.random() < 0.8:
            rec["req"] = {"path": rnd.choice(["/x", "/y", "/z"])}
        roll = rnd.random()
        if roll < 0.85:
            rec["lat"] = rnd.randint(1, 5000)
        elif roll < 0.9:
            rec["lat"] = None
        elif roll < 0.93:
            rec["lat"] = "12"  # a string: counted by count(lat), skipped by the numeric ones
        if mixed:
            roll = rnd.random()
            if roll < 0.05 and "lat" in rec:
                rec["lat"] = rnd.randint(1, 5000) + 0.5  # exact in binary: sums do not depend on order
            elif roll < 0.07 and "lat" in rec:
                rec["lat"] = roll < 0.06  # a bool: present, not a number
            elif roll < 0.1:
                rec["status"] = str(rec["status"])  # "503" >= 500 is false
            elif roll < 0.13:
                del rec["user"]
            rec["at"] = rfc3339(ts)
        out.append((ts, rec))
    return out


def lookup(rec, path):
    v = rec
    for step in path.split("."):
        if not isinstance(v, dict) or step not in v:
            return None
        v = v[step]
    return v


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Cell:
    def __init__(self):
        self.items = []  # (time, arrival, record)


def reference(job, records, partition_of=None, late_out=None):
    """Rows as {(window_start, key...): (window_end, {agg: value})}, and the
    late count, for records in arrival order; the late records themselves
    are appended to late_out when it is a list.

    The watermark is the lowest, over the partitions that have delivered a
    record so far, of (that partition's highest event time - lateness), and
    never goes backwards; partition_of(record) names a record's partition
    (None: one partition).  A record is late when every window it belongs
    to ended at or before the watermark as it stood before the record.
    Which partitions are idle depends on the clock, so it is not modelled:
    tests keep records safely within or safely beyond the lateness."""
    wm = None  # as of the last advance
    part_max = {}
    windows = {}  # (start, end) -> {key: Cell}
    sessions = {}  # key -> [[start, end, Cell]]
    rows = {}
    late = 0

    def emit(start, end, key, cell):
        rows[(start,) + key] = (end, aggregate(job, cell))

    def close(upto):
        for w in sorted(windows):
            if w[1] <= upto:
                for key, cell in windows.pop(w).items():
                    emit(w[0], w[1], key, cell)
        for key, ss in sessions.items():
            for s in [s for s in ss if s[1] <= upto]:
                ss.remove(s)
                emit(s[0], s[1], key, s[2])

    for arrival, (ts, rec) in enumerate(records):
        floor = wm if wm is not None else -(1 << 63)
        part = partition_of(rec) if partition_of else 0
        part_max[part] = ts if part not in part_max else max(part_max[part], ts)
        if job["where"](rec):
            key = tuple(lookup(rec, k) for k in job["keys"])
            kind = job["kind"]
            if kind == "tumbling":
                start = ts // job["size"] * job["size"]
                wins = [(start, start + job["size"])]
                last_end = start + job["size"]
            elif kind == "hopping":
                adv, size = job["advance"], job["size"]
                last = ts // adv * adv
                wins = [(s, s + size) for s in range(last - size + adv, last + 1, adv) if s <= ts < s + size]
                last_end = last + size
            else:
                last_end = ts + job["gap"]
            if last_end <= floor:
                late += 1
                if late_out is not None:
                    late_out.append(rec)
            elif kind == "session":
                ss = sessions.setdefault(key, [])
                start, end = ts, ts + job["gap"]
                cell = Cell()
                for s in [s for s in ss if s[0] < end and ts < s[1]]:
                    ss.remove(s)
                    start, end = min(start, s[0]), max(end, s[1])
                    cell.items += s[2].items
                cell.items.append((ts, arrival, rec))
                ss.append([start, end, cell])
            else:
                for w in wins:
                    if w[1] > floor:
                        windows.setdefault(w, {}).setdefault(key, Cell()).items.append((ts, arrival, rec))
        cand = min(part_max.values()) - job["lateness"]
        wm = cand if wm is None else max(wm, cand)
        close(wm)
    close(1 << 62)
    return rows, late


def aggregate(job, cell):
    out = {}
    for name, spec in job["aggs"].items():
        fn, field = spec[0], spec[1]
        vals = [(ts, arr, lookup(r, field)) for ts, arr, r in cell.items] if field else []
        present = [(ts, arr, v) for ts, arr, v in vals if v is not None]
        nums = [v for _, _, v in present if is_num(v)]
        if fn == "count":
            out[name] = len(cell.items)
        elif fn == "countf":
            out[name] = len(present)
        elif fn == "sum":
            out[name] = sum(nums) if nums else None
        elif fn == "min":
            out[name] = min(nums) if nums else None
        elif fn == "max":
            out[name] = max(nums) if nums else None
        elif fn == "avg":
            out[name] = sum(nums) / len(nums) if nums else None
        elif fn == "first":
            out[name] = min(present, key=lambda x: (x[0], x[1]))[2] if present else None
        elif fn == "last":
            out[name] = max(present, key=lambda x: (x[0], x[1]))[2] if present else None
        elif fn == "distinct":
            out[name] = ("approx", len(set(v for _, _, v in present)))
        elif fn == "pct":
            out[name] = ("pct", sorted(nums), spec[2])
    return out


def matches(want, got):
    """Whether a row's value is the reference's: exact for count, sum, min,
    max, avg, first and last; count_distinct within 5 % (HyperLogLog p=12,
    1.6 % standard error) or 2; a percentile within 1 % (DDSketch) of the
    values at the ranks around q."""
    if isinstance(want, tuple) and want[0] == "approx":
        return isinstance(got, int) and abs(got - want[1]) <= max(2, 0.05 * want[1])
    if isinstance(want, tuple) and want[0] == "pct":
        vals, q = want[1], want[2]
        if not vals:
            return got is None
        rank = q * (len(vals) - 1)
        lo, hi = vals[math.floor(rank)], vals[math.ceil(rank)]
        return isinstance(got, float) and lo * 0.99 - 1e-9 <= got <= hi * 1.01 + 1e-9
    if isinstance(want, float) and isinstance(got, (int, float)):
        return got == want
    return type(got) == type(want) and got == want


def row_key(job, row):
    """A row's (window_start ms, key values...), as reference() keys it."""
    return (parse_rfc3339(row["window_start"]),) + tuple(row.get(k) for k in job["keys"])


def index_rows(job, rows):
    """{row_key: row}; a later row of the same key replaces an earlier one."""
    return {row_key(job, row): row for row in rows}


def mismatches(name, want, got):
    """What differs between the reference's rows (`want`, from reference())
    and the rows by key (`got`, from index_rows) that both have: a list of
    (key, field, wanted, got) tuples, empty when every row matches."""
    bad = []
    for k, (end, aggs) in want.items():
        row = got.get(k)
        if row is None:
            continue
        if row["window_end"] != rfc3339(end) or row["job"] != name:
            bad.append((k, "window_end/job", row))
        for a, w in aggs.items():
            if not matches(w, row.get(a)):
                bad.append((k, a, w if not isinstance(w, tuple) or w[0] != "pct" else w[1][:5], row.get(a)))
    return bad
