package engine

import "strconv"

// HealthHandler answers /health with 200 and a small JSON document of the
// engine's counters; extra, if not nil, appends more fields (without braces
// or a leading comma) for the application to report.
func (e *Engine) HealthHandler(extra func(dst []byte) []byte) HTTPHandler {
	return func(w *Response, _ *Request) {
		b := make([]byte, 0, 256)
		b = append(b, `{"status":"ok","connections":`...)
		b = strconv.AppendInt(b, e.open.Load(), 10)
		b = append(b, `,"tcp":`...)
		b = strconv.AppendInt(b, e.tcp.Load(), 10)
		b = append(b, `,"accepted":`...)
		b = strconv.AppendUint(b, e.accepted.Load(), 10)
		b = append(b, `,"slow_consumers":`...)
		b = strconv.AppendUint(b, e.slowConsumers.Load(), 10)
		b = append(b, `,"loops":`...)
		b = strconv.AppendInt(b, int64(e.opts.Loops), 10)
		if extra != nil {
			b = append(b, ',')
			b = extra(b)
		}
		b = append(b, '}')
		w.ContentType = "application/json"
		w.Body = b
	}
}
