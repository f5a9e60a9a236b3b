//! Report slots: the instants at which a [`ReportSchedule`] fires in a time zone.
//!
//! A slot is a wall-clock time in the schedule's time zone turned into an instant, so a
//! daily 09:00 report stays at 09:00 across daylight-saving changes. A wall-clock time that
//! does not exist (spring forward, 02:30 in Europe/Zurich) fires at the same time one hour
//! later; one that exists twice (fall back) fires once, at its first occurrence.

use chrono::{DateTime, Datelike as _, Days, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::policy::{ReportSchedule, TimeOfDay, Weekday};

/// How often a domain or tenant report is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFrequency {
    /// Every day at 07:00.
    Daily,
    /// Every Monday at 07:00.
    Weekly,
    /// On the first of every month at 07:00.
    Monthly,
}

impl ReportFrequency {
    /// Parses `daily`, `weekly` or `monthly`.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }

    /// The schedule of this frequency (its slots end one period each).
    pub fn schedule(self) -> ReportSchedule {
        let at = TimeOfDay::new(7, 0).expect("07:00 is a valid time");
        match self {
            Self::Daily => ReportSchedule::Daily { at },
            Self::Weekly => ReportSchedule::Weekly {
                weekday: Weekday::Monday,
                at,
            },
            Self::Monthly => ReportSchedule::Monthly {
                day: crate::policy::DayOfMonth::new(1).expect("the 1st exists"),
                at,
            },
        }
    }
}

impl ReportFrequency {
    /// The period the slot `end` closes: from the slot before it to `end`.
    pub fn period_ending(self, tz: Tz, end: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = previous_slot(&self.schedule(), tz, end)
            .expect("a frequency's schedule always has an earlier slot");
        (start, end)
    }

    /// The latest complete period at `at`.
    pub fn last_period(self, tz: Tz, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = latest_slot(&self.schedule(), tz, at)
            .expect("a frequency's schedule always has a slot within its look-back");
        self.period_ending(tz, end)
    }
}

/// How far back [`latest_slot`] looks: more than the longest period (a month).
const LOOKBACK_DAYS: u64 = 40;

/// The latest slot of `schedule` at or before `at`, or `None` for [`ReportSchedule::Never`].
pub fn latest_slot(schedule: &ReportSchedule, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = at.with_timezone(&tz).date_naive();
    for back in 0..=LOOKBACK_DAYS {
        let date = today.checked_sub_days(Days::new(back))?;
        let latest = slots_on(schedule, tz, date)
            .into_iter()
            .filter(|slot| *slot <= at)
            .max();
        if latest.is_some() {
            return latest;
        }
    }
    None
}

/// The slot before `slot` (strictly earlier), or `None` for [`ReportSchedule::Never`].
pub fn previous_slot(
    schedule: &ReportSchedule,
    tz: Tz,
    slot: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    latest_slot(schedule, tz, slot - chrono::Duration::seconds(1))
}

/// Every slot in `(after, until]`, oldest first.
pub fn slots_between(
    schedule: &ReportSchedule,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut slots = Vec::new();
    let mut cursor = until;
    while let Some(slot) = latest_slot(schedule, tz, cursor) {
        if slot <= after {
            break;
        }
        slots.push(slot);
        cursor = slot - chrono::Duration::seconds(1);
    }
    slots.reverse();
    slots
}

/// The slots of `schedule` on one local date, as instants.
fn slots_on(schedule: &ReportSchedule, tz: Tz, date: NaiveDate) -> Vec<DateTime<Utc>> {
    let times: Vec<TimeOfDay> = match *schedule {
        ReportSchedule::Never => Vec::new(),
        ReportSchedule::Daily { at } => vec![at],
        ReportSchedule::TwiceDaily { first, second } => vec![first, second],
        ReportSchedule::Weekly { weekday, at } => {
            if chrono_weekday(weekday) == date.weekday() {
                vec![at]
            } else {
                Vec::new()
            }
        }
        ReportSchedule::Monthly { day, at } => {
            if u32::from(day.get()) == date.day() {
                vec![at]
            } else {
                Vec::new()
            }
        }
    };
    times
        .into_iter()
        .filter_map(|time| local_instant(tz, date, time))
        .collect()
}

/// The instant of a wall-clock time on a date, across DST changes (see the module doc).
fn local_instant(tz: Tz, date: NaiveDate, time: TimeOfDay) -> Option<DateTime<Utc>> {
    let naive = date.and_time(NaiveTime::from_hms_opt(
        u32::from(time.hour()),
        u32::from(time.minute()),
        0,
    )?);
    let local = tz.from_local_datetime(&naive).earliest().or_else(|| {
        tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(local.with_timezone(&Utc))
}

fn chrono_weekday(weekday: Weekday) -> chrono::Weekday {
    match weekday {
        Weekday::Monday => chrono::Weekday::Mon,
        Weekday::Tuesday => chrono::Weekday::Tue,
        Weekday::Wednesday => chrono::Weekday::Wed,
        Weekday::Thursday => chrono::Weekday::Thu,
        Weekday::Friday => chrono::Weekday::Fri,
        Weekday::Saturday => chrono::Weekday::Sat,
        Weekday::Sunday => chrono::Weekday::Sun,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DayOfMonth;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn time(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s).unwrap()
    }

    const ZURICH: Tz = chrono_tz::Europe::Zurich;

    /// `latest_slot(schedule, tz, now)` is `expect` (RFC 3339, or `None`).
    fn check(schedule: ReportSchedule, tz: Tz, now: &str, expect: Option<&str>) {
        assert_eq!(
            latest_slot(&schedule, tz, at(now)),
            expect.map(at),
            "{schedule:?} in {tz} at {now}"
        );
    }

    #[test]
    fn daily_in_winter_and_summer() {
        let daily = ReportSchedule::Daily { at: time("09:00") };
        check(
            daily,
            ZURICH,
            "2026-12-01T08:00:00Z",
            Some("2026-12-01T08:00:00Z"),
        );
        check(
            daily,
            ZURICH,
            "2026-12-01T07:59:59Z",
            Some("2026-11-30T08:00:00Z"),
        );
        check(
            daily,
            ZURICH,
            "2026-07-01T07:00:00Z",
            Some("2026-07-01T07:00:00Z"),
        );
        check(
            daily,
            chrono_tz::America::New_York,
            "2026-12-01T13:59:00Z",
            Some("2026-11-30T14:00:00Z"),
        );
    }

    #[test]
    fn dst_changes_keep_wall_clock_time() {
        let daily = ReportSchedule::Daily { at: time("09:00") };
        // Europe/Zurich switches to summer time on 2026-03-29 and back on 2026-10-25.
        check(
            daily,
            ZURICH,
            "2026-03-29T12:00:00Z",
            Some("2026-03-29T07:00:00Z"),
        );
        check(
            daily,
            ZURICH,
            "2026-03-28T12:00:00Z",
            Some("2026-03-28T08:00:00Z"),
        );
        check(
            daily,
            ZURICH,
            "2026-10-25T12:00:00Z",
            Some("2026-10-25T08:00:00Z"),
        );
        // 02:30 does not exist on 2026-03-29: it fires at 03:30 summer time.
        let night = ReportSchedule::Daily { at: time("02:30") };
        check(
            night,
            ZURICH,
            "2026-03-29T12:00:00Z",
            Some("2026-03-29T01:30:00Z"),
        );
        // 02:30 exists twice on 2026-10-25: it fires once, at the first one.
        let slots = slots_between(
            &night,
            ZURICH,
            at("2026-10-24T12:00:00Z"),
            at("2026-10-25T12:00:00Z"),
        );
        assert_eq!(slots, vec![at("2026-10-25T00:30:00Z")]);
    }

    #[test]
    fn twice_daily_weekly_monthly() {
        let twice = ReportSchedule::TwiceDaily {
            first: time("08:00"),
            second: time("17:30"),
        };
        check(
            twice,
            ZURICH,
            "2026-12-01T12:00:00Z",
            Some("2026-12-01T07:00:00Z"),
        );
        check(
            twice,
            ZURICH,
            "2026-12-01T17:00:00Z",
            Some("2026-12-01T16:30:00Z"),
        );
        check(
            twice,
            ZURICH,
            "2026-12-01T06:00:00Z",
            Some("2026-11-30T16:30:00Z"),
        );
        // 2026-12-04 is a Friday.
        let weekly = ReportSchedule::Weekly {
            weekday: Weekday::Friday,
            at: time("16:00"),
        };
        check(
            weekly,
            ZURICH,
            "2026-12-10T00:00:00Z",
            Some("2026-12-04T15:00:00Z"),
        );
        check(
            weekly,
            ZURICH,
            "2026-12-04T15:00:00Z",
            Some("2026-12-04T15:00:00Z"),
        );
        let monthly = ReportSchedule::Monthly {
            day: DayOfMonth::new(28).unwrap(),
            at: time("06:00"),
        };
        check(
            monthly,
            ZURICH,
            "2026-03-27T00:00:00Z",
            Some("2026-02-28T05:00:00Z"),
        );
        check(
            monthly,
            ZURICH,
            "2026-12-31T00:00:00Z",
            Some("2026-12-28T05:00:00Z"),
        );
        check(ReportSchedule::Never, ZURICH, "2026-12-31T00:00:00Z", None);
    }

    #[test]
    fn frequency_periods() {
        let weekly = ReportFrequency::Weekly;
        // 2026-12-02 is a Wednesday: the last complete week ended Monday 2026-11-30 07:00.
        assert_eq!(
            weekly.last_period(ZURICH, at("2026-12-02T12:00:00Z")),
            (at("2026-11-23T06:00:00Z"), at("2026-11-30T06:00:00Z"))
        );
        assert_eq!(
            ReportFrequency::Monthly.last_period(ZURICH, at("2026-12-02T12:00:00Z")),
            (at("2026-11-01T06:00:00Z"), at("2026-12-01T06:00:00Z"))
        );
        assert_eq!(
            ReportFrequency::parse("daily"),
            Some(ReportFrequency::Daily)
        );
        assert_eq!(ReportFrequency::parse("hourly"), None);
    }

    #[test]
    fn previous_and_between() {
        let daily = ReportSchedule::Daily { at: time("09:00") };
        let slot = at("2026-12-01T08:00:00Z");
        assert_eq!(
            previous_slot(&daily, ZURICH, slot),
            Some(at("2026-11-30T08:00:00Z"))
        );
        let slots = slots_between(&daily, ZURICH, at("2026-11-28T08:00:00Z"), slot);
        assert_eq!(
            slots,
            vec![
                at("2026-11-29T08:00:00Z"),
                at("2026-11-30T08:00:00Z"),
                at("2026-12-01T08:00:00Z")
            ]
        );
    }
}
