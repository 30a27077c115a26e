/* hold/settle/seal counting for sl_completion_t.  Pure. */
#include "core/completion.h"

#include <stdlib.h>

#include "core/log.h"

void sl_completion_init(sl_completion_t *c, sl_completion_cb on_done, void *arg) {
  *c = (sl_completion_t){.on_done = on_done, .arg = arg};
}

/* Runs on_done once; the callback may free c, so nothing touches c after. */
static void maybe_done(sl_completion_t *c) {
  if (c->pending || !c->sealed || c->done) return;
  c->done = true;
  c->on_done(c, !c->failed, c->arg);
}

void sl_completion_hold(sl_completion_t *c) { c->pending++; }

void sl_completion_settle(sl_completion_t *c, bool ok) {
  if (c->pending == 0) {
    sl_log(SL_LOG_ERROR, "completion", "settled more parts than were held");
    abort();
  }
  c->pending--;
  if (!ok) c->failed = true;
  maybe_done(c);
}

void sl_completion_seal(sl_completion_t *c) {
  c->sealed = true;
  maybe_done(c);
}

void sl_completion_fail(sl_completion_t *c) {
  sl_completion_hold(c);
  sl_completion_settle(c, false);
}
