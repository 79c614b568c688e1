"""Slack's deliveries, by kind: the `/aml` command, the card's buttons and form, the App Home tab.
Each listener acks at once and hands over to bot/requests/; `register` wires every kind."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, home
from bot.publisher import Publisher
from bot.requests import Requests


def register(app: AsyncApp, requests: Requests, publisher: Publisher, home_tab: home.HomeTab) -> None:
    commands.register(app, requests, publisher)
    actions.register(app, requests, publisher)
    home.register(app, requests, home_tab)
