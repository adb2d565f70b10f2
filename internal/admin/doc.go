// Package admin owns the admin API: its wire types (GET
// /api/v1/integrations and friends), which the gateway encodes and the
// dashboard and the drill decode, so the three cannot drift apart field by
// field; and its HTTP handler (token check, health, metrics, profiles,
// credential refresh, kill switches), which serves any API, in practice
// the gateway.
//
// The package imports no gateway code; the gateway imports it.
package admin
