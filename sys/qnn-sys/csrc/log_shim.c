/*
 * wisp-qnn-sys log shim.
 *
 * QNN reports log messages through a callback that receives a printf-style format string and a
 * va_list. Stable Rust cannot consume a va_list, so this file formats the message with vsnprintf
 * and forwards the finished string to a sink function registered from Rust.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*wisp_qnn_log_sink_fn)(const char *msg, uint32_t level, uint64_t timestamp);

/* Set once from Rust before the callback is handed to QNN; read from any QNN thread. */
static wisp_qnn_log_sink_fn volatile g_sink = NULL;

void wisp_qnn_log_set_sink(wisp_qnn_log_sink_fn sink) {
    __atomic_store_n(&g_sink, sink, __ATOMIC_RELEASE);
}

void wisp_qnn_log_trampoline(const char *fmt, uint32_t level, uint64_t timestamp, va_list args) {
    wisp_qnn_log_sink_fn sink = __atomic_load_n(&g_sink, __ATOMIC_ACQUIRE);
    if (sink == NULL || fmt == NULL) {
        return;
    }
    char small[512];
    va_list first;
    va_copy(first, args);
    int needed = vsnprintf(small, sizeof small, fmt, first);
    va_end(first);
    if (needed < 0) {
        sink(fmt, level, timestamp); /* unformattable: pass the raw format string */
        return;
    }
    if ((size_t)needed < sizeof small) {
        sink(small, level, timestamp);
        return;
    }
    char *big = (char *)malloc((size_t)needed + 1);
    if (big == NULL) {
        sink(small, level, timestamp); /* truncated is better than nothing */
        return;
    }
    va_list second;
    va_copy(second, args);
    vsnprintf(big, (size_t)needed + 1, fmt, second);
    va_end(second);
    sink(big, level, timestamp);
    free(big);
}

/* Test helper: behaves like a QNN library logging through the callback. */
void wisp_qnn_log_emit_for_test(uint32_t level, uint64_t timestamp, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    wisp_qnn_log_trampoline(fmt, level, timestamp, args);
    va_end(args);
}
