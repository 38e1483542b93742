// Package clients talks to the services the controller depends on: holmesgpt-api (investigations) and
// datastorage (audit events), following the contract in docs/design.md. The wire types are the
// services' own: services/holmesgpt-api/api and services/datastorage/api.
package clients
