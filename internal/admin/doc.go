// Package admin holds the wire types of the admin API (GET
// /api/v1/integrations and friends): the gateway encodes them, and the
// dashboard and the drill decode the same types, so the three cannot drift
// apart field by field.
//
// The package imports no gateway code; the gateway imports it.
package admin
