/* JSON-lines sink: one object per record in the dbtap (v2) or OCSF format (evline.c),
 * for shipping into a SIEM (Fluent Bit, Vector, Filebeat). Lines are buffered and written
 * with write(2) on flush, so a line is never split between batches; SIGHUP -> reopen. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evline.h"
#include "jsonw.h"
#include "sink.h"

#define JS_BUFFER_MAX (1u << 20) /* write out early past this many buffered bytes */

struct js_sink {
	struct sink base;
	int fd;
	int is_stdout;
	struct jw buf;
	uint64_t buffered_lines;
	struct evl_opts opts;
	char *sensor;
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

static int js_put(struct sink *s, const struct rec *r)
{
	struct js_sink *j = (struct js_sink *)s;
	size_t mark = j->buf.len;
	int rc = evl_format_rec(&j->buf, &j->opts, r, NULL);
	if (rc == 0)
		return 0; /* no line for this record in this format */
	if (rc == -EINVAL)
		return rc;
	if (rc > 0)
		jw_putc(&j->buf, '\n');
	if (rc < 0 || j->buf.oom) {
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
	free(j->sensor);
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

int sink_json_set_format(struct sink *s, int format, const char *sensor)
{
	if (!s || s->ops != &js_ops)
		return -EINVAL;
	struct js_sink *j = (struct js_sink *)s;
	char *dup = sensor ? strdup(sensor) : NULL;
	if (sensor && !dup)
		return -ENOMEM;
	free(j->sensor);
	j->sensor = dup;
	j->opts.format = format == EVL_OCSF ? EVL_OCSF : EVL_DBTAP;
	j->opts.sensor = j->sensor;
	return 0;
}
