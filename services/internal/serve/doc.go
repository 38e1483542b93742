// Package serve runs a service of the contract in docs/design.md as a process: the command line
// (--listen, env LISTEN_ADDR, default :8080), JSON logs with log/slog on stderr, an access log, and
// serving HTTP until SIGTERM or interrupt, then draining in-flight requests.
//
// A service's main function is
//
//	func main() { serve.Main("name", parseConfig, run) }
//
// where run calls [Run] with the service's handler.
package serve
