// Package clients talks to the services the controller depends on: holmesgpt-api (investigations) and
// datastorage (audit events), following the contract in docs/design.md.
package clients
