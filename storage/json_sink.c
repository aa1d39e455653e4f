/* JSON-lines sink: one object per record with "event_type" and the database's column names,
 * for shipping into a SIEM (Fluent Bit, Vector, Filebeat). Lines are buffered and written
 * with write(2) on flush, so a line is never split between batches; SIGHUP -> reopen. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonw.h"
#include "sink.h"

#define JS_BUFFER_MAX (1u << 20) /* write out early past this many buffered bytes */

struct js_sink {
	struct sink base;
	int fd;
	int is_stdout;
	struct jw buf;
	uint64_t buffered_lines;
};

static int js_open_fd(struct js_sink *j, char *err, size_t errlen)
{
	if (j->is_stdout) {
		j->fd = STDOUT_FILENO;
		return 0;
	}
	j->fd = open(j->base.name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (j->fd < 0) {
		snprintf(err, errlen, "%s: %s", j->base.name, strerror(errno));
		return -errno;
	}
	return 0;
}

static int js_write_out(struct js_sink *j)
{
	size_t off = 0;
	int rc = 0;
	while (off < j->buf.len) {
		ssize_t n = write(j->fd, j->buf.buf + off, j->buf.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(j->base.errmsg, sizeof(j->base.errmsg), "%s: write: %s", j->base.name,
				 strerror(-rc));
			/* whole lines that did not make it are counted, never silent */
			j->base.dropped += j->buffered_lines;
			break;
		}
		off += (size_t)n;
	}
	jw_reset(&j->buf);
	j->buffered_lines = 0;
	return rc;
}

static void js_run(struct jw *w, const struct rec_run *x)
{
	jw_puts(w, "{\"event_type\":\"run\"");
	jw_kint(w, "id", x->id);
	jw_ktime(w, "started_at", x->started_at);
	jw_ktime(w, "ended_at", x->ended_at);
	jw_kstr(w, "source", x->source);
	jw_kint(w, "packets", x->packets);
	jw_kint(w, "bytes", x->bytes);
	jw_kint(w, "kernel_drops", x->kernel_drops);
	jw_kint(w, "sensor_drops", x->sensor_drops);
	jw_kint(w, "streams", x->streams);
	jw_kstr(w, "version", x->version);
	jw_kstr(w, "config", x->config);
	jw_kstr(w, "drops", x->drops);
}

static void js_id(struct jw *w, const char *key, int64_t id)
{
	if (id > 0)
		jw_kint(w, key, id);
	else
		jw_knull(w, key);
}

static void js_session(struct jw *w, const struct rec_session *x)
{
	jw_puts(w, "{\"event_type\":\"session\"");
	jw_kint(w, "id", x->id);
	js_id(w, "run_id", x->run_id);
	jw_kstr(w, "protocol", x->protocol);
	jw_kstr(w, "client_ip", x->client_ip);
	jw_kint(w, "client_port", x->client_port);
	jw_kstr(w, "server_ip", x->server_ip);
	jw_kint(w, "server_port", x->server_port);
	jw_ktime(w, "started_at", x->started_at);
	jw_ktime(w, "ended_at", x->ended_at);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "database", x->database);
	jw_kstr(w, "application", x->application);
	jw_kstr(w, "client_info", x->client_info);
	jw_kstr(w, "server_version", x->server_version);
	jw_kint(w, "tls", x->tls ? 1 : 0);
	jw_kstr(w, "auth_method", x->auth_method);
	jw_kstr(w, "login", x->login);
	jw_kstr(w, "login_error", x->login_error);
	jw_kint(w, "midstream", x->midstream ? 1 : 0);
	jw_kstr(w, "end_reason", x->end_reason);
	jw_kint(w, "statements", x->statements);
	jw_kint(w, "errors", x->errors);
	jw_kint(w, "rows_returned", x->rows_returned);
	jw_kint(w, "bytes_to_server", x->bytes_to_server);
	jw_kint(w, "bytes_to_client", x->bytes_to_client);
	jw_kint(w, "gaps", x->gaps);
	jw_kint(w, "lost_bytes", x->lost_bytes);
	jw_kint(w, "resumed", x->resumed);
	jw_kint(w, "restored", x->restored);
}

static void js_statement(struct jw *w, const struct rec_statement *x)
{
	jw_puts(w, "{\"event_type\":\"statement\"");
	jw_kint(w, "id", x->id);
	js_id(w, "session_id", x->session_id);
	jw_ktime(w, "ts", x->ts);
	jw_kstr(w, "end_user", x->end_user);
	jw_kstr(w, "end_user_source", x->end_user_source);
	jw_kstr(w, "verb", x->verb);
	jw_kstr(w, "fingerprint", x->fingerprint);
	jw_kstr(w, "sql", x->sql);
	jw_kstr(w, "params", x->params);
	jw_kstr(w, "outcome", x->outcome);
	jw_kstr(w, "error_code", x->error_code);
	if (x->rows >= 0)
		jw_kint(w, "rows", x->rows);
	else
		jw_knull(w, "rows");
	if (x->duration_us >= 0)
		jw_kint(w, "duration_us", x->duration_us);
	else
		jw_knull(w, "duration_us");
	jw_kstr(w, "protocol", x->protocol);
	jw_kstr(w, "client_ip", x->client_ip);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "database", x->database);
	jw_kstr(w, "application", x->application);
}

static void js_finding(struct jw *w, const struct rec_finding *x)
{
	jw_puts(w, "{\"event_type\":\"finding\"");
	jw_kint(w, "id", x->id);
	js_id(w, "run_id", x->run_id);
	js_id(w, "session_id", x->session_id);
	js_id(w, "statement_id", x->statement_id);
	jw_ktime(w, "ts", x->ts);
	jw_kstr(w, "kind", x->kind);
	jw_kstr(w, "severity", x->severity);
	jw_kstr(w, "protocol", x->protocol);
	jw_kstr(w, "client_ip", x->client_ip);
	jw_kstr(w, "server_ip", x->server_ip);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "database", x->database);
	jw_kstr(w, "application", x->application);
	jw_kstr(w, "end_user", x->end_user);
	jw_kstr(w, "end_user_source", x->end_user_source);
	jw_kstr(w, "fingerprint", x->fingerprint);
	jw_kstr(w, "sql", x->sql);
	jw_kstr(w, "summary", x->summary);
	jw_kstr(w, "evidence", x->evidence);
	/* a repeat (count > 1) updates the finding with this id: same id, newer count */
	jw_kint(w, "count", x->count > 0 ? x->count : 1);
	jw_ktime(w, "last_seen", x->last_seen ? x->last_seen : x->ts);
}

static int js_put(struct sink *s, const struct rec *r)
{
	struct js_sink *j = (struct js_sink *)s;
	size_t mark = j->buf.len;
	switch (r->type) {
	case REC_RUN: js_run(&j->buf, r->u.run); break;
	case REC_SESSION: js_session(&j->buf, r->u.session); break;
	case REC_STATEMENT: js_statement(&j->buf, r->u.statement); break;
	case REC_FINDING: js_finding(&j->buf, r->u.finding); break;
	case REC_BASELINE: return 0; /* the baseline lives in the database only */
	case REC_STATE: return 0;    /* so does saved session state */
	default: return -EINVAL;
	}
	jw_mem(&j->buf, "}\n", 2);
	if (j->buf.oom) {
		/* drop this line only; what was buffered before stays intact */
		j->buf.oom = 0;
		j->buf.len = mark;
		s->dropped++;
		snprintf(s->errmsg, sizeof(s->errmsg), "%s: out of memory formatting a record",
			 s->name);
		return -ENOMEM;
	}
	j->buffered_lines++;
	if (j->buf.len >= JS_BUFFER_MAX)
		return js_write_out(j);
	return 0;
}

static int js_flush(struct sink *s)
{
	return js_write_out((struct js_sink *)s);
}

static void js_close(struct sink *s)
{
	struct js_sink *j = (struct js_sink *)s;
	js_write_out(j);
	if (!j->is_stdout && j->fd >= 0)
		close(j->fd);
	jw_free(&j->buf);
	free((char *)s->name);
	free(j);
}

static const struct sink_ops js_ops = {
	.put = js_put,
	.flush = js_flush,
	.close = js_close,
	.sync = js_flush,
};

struct sink *sink_json_open(const char *path, char *err, size_t errlen)
{
	struct js_sink *j = calloc(1, sizeof(*j));
	if (!j || !(j->base.name = strdup(path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(j);
		return NULL;
	}
	j->base.ops = &js_ops;
	j->is_stdout = strcmp(path, "-") == 0;
	if (j->is_stdout) {
		free((char *)j->base.name);
		j->base.name = strdup("<stdout>");
	}
	if (!j->base.name || js_open_fd(j, err, errlen) < 0) {
		if (!j->base.name)
			snprintf(err, errlen, "%s: out of memory", path);
		free((char *)j->base.name);
		free(j);
		return NULL;
	}
	return &j->base;
}

/* Flush, then open the path again: after logrotate renamed the file, new lines go to a new
 * file. On failure the old descriptor is kept so nothing is lost. */
int sink_json_reopen(struct sink *s)
{
	if (!s || s->ops != &js_ops)
		return -EINVAL;
	struct js_sink *j = (struct js_sink *)s;
	int rc = js_write_out(j);
	if (j->is_stdout)
		return rc;
	int fd = open(j->base.name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(s->errmsg, sizeof(s->errmsg), "%s: reopen: %s", s->name, strerror(errno));
		return -errno;
	}
	close(j->fd);
	j->fd = fd;
	return rc;
}
