"""Progress lines: an honest time left from a smoothed byte rate, and a final line that says how it ended."""

from __future__ import annotations

from bot.progress import Eta, duration, final_text, progress_text

MiB = 1024 * 1024


def test_time_spent_before_bytes_move_does_not_inflate_the_time_left() -> None:
    # A 6 MiB export: 5 s listing before any byte moves, then 1 MiB/s. The old estimate divided by
    # the whole elapsed time and promised thousands of seconds.
    eta = Eta()
    eta.update(0, 0.0)  # first report: the baseline, no forecast yet
    assert "estimating time left" in progress_text(0, 6, 0, 6 * MiB, eta)
    eta.update(0, 5.0)  # listing: nothing moved
    for second in range(1, 4):
        eta.update(second * MiB, 5.0 + second)
    left = eta.left(3 * MiB, 6 * MiB)
    assert left is not None and 3 <= left < 10
    assert progress_text(3, 6, 3 * MiB, 6 * MiB, eta).endswith(f"· about {duration(left)} left")


def test_the_rate_is_smoothed_and_short_samples_are_ignored() -> None:
    eta = Eta()
    eta.update(0, 0.0)
    eta.update(10 * MiB, 0.2)  # 0.2 s: too short to measure
    assert eta.rate is None
    eta.update(10 * MiB, 1.0)
    assert eta.rate == 10 * MiB
    eta.update(10 * MiB, 2.0)  # a stall of one second moves the estimate, it does not zero it
    assert eta.rate is not None and 0 < eta.rate < 10 * MiB


def test_resource_operations_count_items_not_bytes() -> None:
    line = progress_text(1, 2, 0, 0, Eta())
    assert line == ":gear: 1 of 2 items" and "0 B" not in line


def test_the_final_line_says_how_it_ended() -> None:
    assert final_text("succeeded", 21, 21, 873 * 1024, 6.2) == ":white_check_mark: Finished: 21 of 21 items, 873.0 KiB in 6 s."
    assert final_text("failed", 0, 1, 0, 75) == ":x: Stopped with an error: 0 of 1 item in 1 min."
    stopped = final_text("partially_succeeded", 3, 5, 0, 4000, stopped_early=True)
    assert stopped.startswith(":heavy_multiplication_x: Stopped on request: 3 of 5 items in 1 h 7 min")
