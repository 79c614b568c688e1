"""Stand-ins that speak Slack's protocol, for tests: a fake Web API server and a signed-request sender."""
