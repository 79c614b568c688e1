"""Local stand-ins for what amlbot talks to: Slack's Web API, Socket Mode and signed requests,
Microsoft Graph, the Azure ML control plane and Azure Files, and Azurite's launcher.

They ship with the product (the `amlbot[sandbox]` extra) because the sandbox is made of them; the
tests use the same ones, and their own tests are in tests/standins/.
"""
