"""The template filters the pages share: sizes as docker prints them, UTC times, ages, short digests; and
autoescaping of whatever an image or a user supplied."""

from __future__ import annotations

import datetime as dt

import pytest

from trustyard.web.render import Renderer, age, human_size, short_digest, when

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, ""), (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (8_387_216, "8.4 MB"), (68_223_003_000, "68.2 GB")],
)
def test_sizes_read_as_docker_prints_them(size: int | None, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "1970-01-01 00:00 UTC"),
        ("2026-11-29T22:32:08.301147Z", "2026-11-29 22:32 UTC"),
        (dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2026-01-02 01:04 UTC"),
        ("not a time", "not a time"),
        (None, ""),
    ],
)
def test_times_are_shown_in_utc(value: object, text: str) -> None:
    assert when(value) == text  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2026-11-29T11:59:30Z", "less than a minute"),
        ("2026-11-29T11:00:00Z", "1 hour"),
        ("2026-11-26T12:00:00Z", "3 days"),
        ("2023-02-27T14:47:14Z", "3 years"),
        (None, ""),
    ],
)
def test_ages_use_the_largest_whole_unit(value: str | None, text: str) -> None:
    assert age(value, NOW) == text


def test_digests_are_shortened_to_twelve_hex_digits() -> None:
    assert short_digest("sha256:" + "ab" * 32) == "sha256:" + "ab" * 6
    assert short_digest(None) == ""


def test_what_an_image_supplies_is_escaped() -> None:
    env = Renderer().env
    html = env.from_string("<td>{{ label }}</td>").render(label='<script>alert("x")</script>')
    assert html == "<td>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</td>"
