"""The sandbox: amlbot on a laptop with no accounts.

`make run` without Slack tokens (or `python -m sandbox`) starts Azurite, the Azure ML control-plane
stand-in seeded with a demo workspace, the real bot, and a console on localhost that looks and
behaves like a Slack channel. The console is the bot's Slack Web API and sends it signed requests
exactly as Slack does, so nothing in `bot/` knows it is in a sandbox.
"""
