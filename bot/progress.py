"""Progress in words: how far a job is, how fast its bytes go, an honest time left, and how it ended.
Pure (the clock is passed in)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.plan_words import count, human_bytes

SMOOTHING = 0.3  # weight of the newest rate sample: steady, yet follows a real change within a few updates
MIN_SAMPLE_SECONDS = 1.0  # a rate measured over less than this is noise, not a basis for a forecast


def duration(seconds: float) -> str:
    """`6 s`, `3 min`, `1 h 20 min`: what a person reads at a glance."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


@dataclass
class Eta:
    """A byte rate smoothed over the job's updates, and the time left it implies.

    The first update only sets the baseline (time spent listing or starting is not transfer time),
    and no forecast is made until bytes have been seen moving for MIN_SAMPLE_SECONDS."""

    rate: float | None = None  # bytes per second, smoothed
    _at: float | None = None
    _bytes: int = 0

    def update(self, done_bytes: int, moment: float) -> None:
        if self._at is None:
            self._at, self._bytes = moment, done_bytes
            return
        elapsed = moment - self._at
        if elapsed < MIN_SAMPLE_SECONDS:
            return  # too short to say anything; the next update measures from the same point
        sample = max(done_bytes - self._bytes, 0) / elapsed
        self.rate = sample if self.rate is None else SMOOTHING * sample + (1 - SMOOTHING) * self.rate
        self._at, self._bytes = moment, done_bytes

    def left(self, done_bytes: int, total_bytes: int) -> float | None:
        if not self.rate or total_bytes <= done_bytes:
            return None
        return (total_bytes - done_bytes) / self.rate


def progress_text(done: int, total: int, done_bytes: int, total_bytes: int, eta: Eta) -> str:
    """The line while it runs: items, and for work with bytes the bytes, rate and time left."""
    line = f":gear: {done} of {count(total, 'item')}"
    if total_bytes:
        line += f", {human_bytes(done_bytes)} of {human_bytes(total_bytes)}"
        left = eta.left(done_bytes, total_bytes)
        if eta.rate:
            line += f" · {human_bytes(int(eta.rate))}/s"
        if done_bytes < total_bytes:
            line += f" · about {duration(left)} left" if left is not None else " · estimating time left…"
    return line


_ENDINGS = {
    "succeeded": ":white_check_mark: Finished",
    "partially_succeeded": ":warning: Finished, partly",
    "failed": ":x: Stopped with an error",
}


def final_text(state: str, done: int, total: int, total_bytes: int, seconds: float, stopped_early: bool = False) -> str:
    """The line once the job has ended: how it ended, how much, how long. The result follows below."""
    ending = ":heavy_multiplication_x: Stopped on request" if stopped_early else _ENDINGS.get(state, f"Ended ({state})")
    size = f", {human_bytes(total_bytes)}" if total_bytes else ""
    return f"{ending}: {done} of {count(total, 'item')}{size} in {duration(seconds)}."
