// Package wire holds what the server, the client and the load generator
// share of the chat protocol (docs/protocol.md): the objects as they cross
// the wire, the error codes, the limits, a JSON string encoder and a JSON
// scanner that reads fields without encoding/json.
//
// It is on the server's hot path (every push encodes a Message, every
// request is scanned), so it is written by hand and allocates only where
// the result must outlive the input.
package wire
