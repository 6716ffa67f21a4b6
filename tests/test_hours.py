"""Program hours on frozen moments: open, closed, holidays, both daylight-saving changes, bad text.

New York is UTC-5 in winter (EST) and UTC-4 in summer (EDT); in 2025 the clocks sprang forward at
02:00 on Sunday 9 March and fell back at 02:00 on Sunday 2 November. Naive datetimes are UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from voice.hours import parse_holidays, parse_hours

NY = "America/New_York"
WEEKDAYS_AND_SATURDAY = "mon-fri 08:00-20:00; sat 10:00-16:00"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(NY))


def test_open_and_closed_on_an_ordinary_week():
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY)
    assert hours.is_open(local(2025, 1, 6, 8, 0))             # Monday, opening minute
    assert hours.is_open(local(2025, 1, 6, 19, 59, 59))
    assert not hours.is_open(local(2025, 1, 6, 20, 0))        # closes on the dot
    assert not hours.is_open(local(2025, 1, 6, 7, 59))
    assert hours.is_open(local(2025, 1, 11, 12, 0))           # Saturday
    assert not hours.is_open(local(2025, 1, 11, 16, 30))
    assert not hours.is_open(local(2025, 1, 12, 12, 0))       # Sunday


def test_naive_moments_are_utc_and_aware_ones_any_zone():
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY)
    assert hours.is_open(datetime(2025, 1, 6, 13, 0))         # 08:00 EST
    assert not hours.is_open(datetime(2025, 1, 6, 12, 59))
    assert hours.is_open(datetime(2025, 1, 7, 0, 59))         # Monday 19:59 EST, Tuesday in UTC
    assert hours.is_open(datetime(2025, 1, 6, 13, 0, tzinfo=UTC))
    assert hours.is_open(datetime(2025, 1, 6, 14, 0, tzinfo=ZoneInfo("Europe/London")))


def test_several_shifts_a_day_and_lists_of_days():
    hours = parse_hours("mon,wed 09:00-12:00, 13:00-17:00; Friday 09:00-12:00; fri 11:00-13:00", NY)
    assert hours.is_open(local(2025, 1, 8, 9, 0))             # Wednesday
    assert not hours.is_open(local(2025, 1, 8, 12, 30))       # lunch
    assert hours.is_open(local(2025, 1, 8, 13, 0))
    assert not hours.is_open(local(2025, 1, 7, 10, 0))        # Tuesday
    assert hours.is_open(local(2025, 1, 10, 12, 30))          # Friday's overlapping shifts merge
    assert hours.closes_at(local(2025, 1, 10, 10, 0)) == datetime(2025, 1, 10, 18, 0)


def test_empty_text_is_open_at_every_hour():
    hours = parse_hours("  ", NY)
    for moment in (datetime(2025, 1, 1, 0, 0), datetime(2025, 3, 9, 7, 30), datetime(2025, 11, 2, 6, 30)):
        assert hours.is_open(moment)
        assert hours.next_opening(moment) == moment
    assert hours.next_opening(local(2025, 7, 4, 23, 59)) == datetime(2025, 7, 5, 3, 59)
    assert hours.closes_at(datetime(2025, 1, 1)) is None      # never closes
    assert hours.describe() == "every day, at any hour"
    assert hours.describe("es") == "todos los días, a cualquier hora"


def test_holidays_close_the_line_all_local_day():
    holidays = parse_holidays("2025-12-25, 2026-01-01")
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY, holidays)
    assert not hours.is_open(local(2025, 12, 25, 12, 0))       # Thursday, Christmas
    assert hours.is_open(local(2025, 12, 24, 19, 0))
    assert hours.is_open(datetime(2025, 12, 25, 0, 30))        # 19:30 on the 24th in New York
    always = parse_hours("", NY, holidays)
    assert not always.is_open(local(2025, 12, 25, 0, 0))       # even a line open at every hour
    assert always.is_open(local(2025, 12, 24, 23, 59))
    assert always.closes_at(local(2025, 12, 24, 9, 0)) == datetime(2025, 12, 25, 5, 0)


def test_next_holiday():
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY, parse_holidays("2026-01-01;2025-12-25"))
    assert hours.next_holiday(date(2025, 12, 1)) == date(2025, 12, 25)
    assert hours.next_holiday(date(2025, 12, 25)) == date(2025, 12, 25)
    assert hours.next_holiday(date(2025, 12, 26)) == date(2026, 1, 1)
    assert hours.next_holiday(date(2026, 1, 2)) is None


def test_next_opening_over_a_weekend():
    hours = parse_hours("mon-fri 08:00-20:00", NY)
    friday_night = local(2025, 1, 10, 20, 0)
    assert hours.next_opening(friday_night) == datetime(2025, 1, 13, 13, 0)   # Monday 08:00 EST
    assert hours.next_opening(local(2025, 1, 13, 7, 0)) == datetime(2025, 1, 13, 13, 0)
    open_now = datetime(2025, 1, 13, 15, 0)
    assert hours.next_opening(open_now) == open_now


def test_next_opening_over_a_holiday():
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY, parse_holidays("2025-12-25,2025-12-26"))
    # Wednesday evening, then Christmas and the day after are holidays: Saturday 10:00 EST.
    assert hours.next_opening(local(2025, 12, 24, 21, 0)) == datetime(2025, 12, 27, 15, 0)
    assert hours.next_opening(local(2025, 12, 25, 9, 0)) == datetime(2025, 12, 27, 15, 0)


def test_closes_at():
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY)
    assert hours.closes_at(local(2025, 1, 6, 9, 0)) == datetime(2025, 1, 7, 1, 0)   # 20:00 EST
    assert hours.closes_at(local(2025, 1, 6, 21, 0)) is None
    assert hours.closes_at(local(2025, 7, 7, 9, 0)) == datetime(2025, 7, 8, 0, 0)   # 20:00 EDT


def test_a_night_shift_is_written_as_two_and_closes_the_next_morning():
    hours = parse_hours("fri 22:00-24:00; sat 00:00-06:00", NY)
    assert hours.is_open(local(2025, 1, 10, 23, 0))
    assert hours.is_open(local(2025, 1, 11, 5, 59))
    assert not hours.is_open(local(2025, 1, 11, 6, 0))
    assert hours.closes_at(local(2025, 1, 10, 23, 0)) == datetime(2025, 1, 11, 11, 0)   # Saturday 06:00 EST
    assert hours.describe() == "Friday, 10 p.m. to midnight; Saturday, midnight to 6 a.m."


def test_a_shift_keeps_its_local_hours_when_the_clocks_spring_forward():
    hours = parse_hours("mon-sun 08:00-20:00", NY)
    # Saturday 8 March 2025 in EST, Sunday 9 March in EDT: 08:00 local is 13:00 then 12:00 UTC.
    assert hours.closes_at(local(2025, 3, 8, 9, 0)) == datetime(2025, 3, 9, 1, 0)
    assert hours.next_opening(local(2025, 3, 8, 21, 0)) == datetime(2025, 3, 9, 12, 0)
    assert hours.closes_at(local(2025, 3, 9, 9, 0)) == datetime(2025, 3, 10, 0, 0)
    assert not hours.is_open(datetime(2025, 3, 9, 11, 59))
    assert hours.is_open(datetime(2025, 3, 9, 12, 0))


def test_a_shift_keeps_its_local_hours_when_the_clocks_fall_back():
    hours = parse_hours("mon-sun 08:00-20:00", NY)
    # Saturday 1 November in EDT, Sunday 2 November in EST: a 13-hour gap in UTC is still 12 local hours.
    assert hours.next_opening(local(2025, 11, 1, 21, 0)) == datetime(2025, 11, 2, 13, 0)
    assert hours.closes_at(datetime(2025, 11, 2, 13, 0)) == datetime(2025, 11, 3, 1, 0)
    assert not hours.is_open(datetime(2025, 11, 2, 12, 59))


def test_shifts_touching_the_missing_hour_on_spring_forward_day():
    # On 9 March 2025 New York's clocks jump from 01:59:59 EST to 03:00 EDT (07:00 UTC).
    starts = parse_hours("sun 02:00-05:00", NY)
    assert starts.next_opening(datetime(2025, 3, 9, 5, 0)) == datetime(2025, 3, 9, 7, 0)
    assert starts.is_open(datetime(2025, 3, 9, 7, 0))
    assert starts.closes_at(datetime(2025, 3, 9, 7, 0)) == datetime(2025, 3, 9, 9, 0)
    ends = parse_hours("sun 00:00-02:30", NY)
    assert ends.is_open(datetime(2025, 3, 9, 6, 59))
    assert ends.closes_at(datetime(2025, 3, 9, 5, 0)) == datetime(2025, 3, 9, 7, 0)
    never = parse_hours("sun 02:00-02:30", NY)                  # that Sunday it never happens
    assert never.next_opening(datetime(2025, 3, 9, 0, 0)) == datetime(2025, 3, 16, 6, 0)


def test_a_shift_in_the_repeated_hour_on_fall_back_day():
    # On 2 November 2025 01:00-02:00 happens twice: 05:00-06:00 UTC (EDT), then 06:00-07:00 UTC (EST).
    hours = parse_hours("sun 01:30-02:00", NY)
    assert hours.next_opening(datetime(2025, 11, 2, 4, 0)) == datetime(2025, 11, 2, 5, 30)
    assert hours.closes_at(datetime(2025, 11, 2, 5, 30)) == datetime(2025, 11, 2, 6, 0)
    assert not hours.is_open(datetime(2025, 11, 2, 6, 10))     # 01:10 EST, the second time round
    assert hours.next_opening(datetime(2025, 11, 2, 6, 10)) == datetime(2025, 11, 2, 6, 30)
    assert hours.closes_at(datetime(2025, 11, 2, 6, 30)) == datetime(2025, 11, 2, 7, 0)
    # A shift around the change runs the repeated hour twice: 00:00 EDT to 03:00 EST is four hours.
    night = parse_hours("sun 00:00-03:00", NY)
    assert night.closes_at(datetime(2025, 11, 2, 4, 30)) == datetime(2025, 11, 2, 8, 0)
    assert night.is_open(datetime(2025, 11, 2, 7, 59))


def test_describe_in_both_languages():
    hours = parse_hours(WEEKDAYS_AND_SATURDAY, NY)
    assert hours.describe("en") == "Monday to Friday, 8 a.m. to 8 p.m.; Saturday, 10 a.m. to 4 p.m."
    assert hours.describe("es") == ("de lunes a viernes, de 8 de la mañana a 8 de la noche; "
                                    "sábado, de 10 de la mañana a 4 de la tarde")
    split = parse_hours("mon,wed 09:00-12:00,13:30-17:00; sat-sun 00:00-24:00", NY)
    assert split.describe() == ("Monday and Wednesday, 9 a.m. to noon and 1:30 p.m. to 5 p.m.; "
                                "Saturday and Sunday, all day")
    assert split.describe("es") == ("lunes y miércoles, de 9 de la mañana a 12 del mediodía y "
                                    "de 1:30 de la tarde a 5 de la tarde; sábado y domingo, todo el día")
    assert parse_hours("mon-sun 07:00-19:00", NY).describe() == "every day, 7 a.m. to 7 p.m."


def test_day_ranges_may_wrap_past_sunday():
    hours = parse_hours("fri-mon 10:00-14:00", NY)
    assert [bool(shifts) for shifts in hours.week] == [True, False, False, False, True, True, True]


@pytest.mark.parametrize(("text", "says"), [
    ("mon-fri 8-20", "'8-20' is not a time range like 08:00-20:00"),
    ("xyz 08:00-09:00", "'xyz' is not a day"),
    ("mon 09:00-08:00", "ends before it starts"),
    ("mon 22:00-06:00", "a shift past midnight is two shifts, e.g. mon 22:00-24:00; tue 00:00-06:00"),
    ("mon 22:00-00:00", "write the end as 24:00"),
    ("mon 08:00-24:30", "24:00 as an end"),
    ("mon 25:00-26:00", "hours 00-23"),
    ("08:00-20:00", "is not days and times"),
    ("mon-fri", "is not days and times"),
    ("mo 08:00-09:00", "'mo' is not a day"),
    ("mon-fri-sat 08:00-09:00", "'fri-sat' is not a day"),
])
def test_bad_text_is_a_one_line_value_error(text, says):
    with pytest.raises(ValueError) as caught:
        parse_hours(text, NY)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["2025-02-30", "25-12-2025", "2025-1-1", "tomorrow"])
def test_bad_holidays_are_a_value_error(text):
    with pytest.raises(ValueError, match="is not a date"):
        parse_holidays(text)


def test_holidays_read_commas_semicolons_and_spaces_around_them():
    assert parse_holidays(" 2025-12-25 ;2026-01-01,, ") == {date(2025, 12, 25), date(2026, 1, 1)}
    assert parse_holidays("") == frozenset()
