"""The audio service: call audio → campaign, bot-behaviour and synthetic-voice verdicts."""
