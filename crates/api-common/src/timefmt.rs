//! Timestamp formats the dialects share: compact ISO 8601 (`YYYYMMDD'T'HHMMSS'Z'`, AWS
//! `X-Amz-Date` and Huawei `X-Sdk-Date`) and RFC 3339 with milliseconds and `Z` (AWS and Huawei
//! response bodies).

/// `YYYYMMDD'T'HHMMSS'Z'` -> Unix seconds; None if malformed or not a real date.
pub fn parse_compact(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = value.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, s) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Unix seconds -> `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_compact(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Unix milliseconds -> `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_with_millis() {
        assert_eq!(
            super::rfc3339_millis(1_648_038_896_123),
            "2022-03-23T12:34:56.123Z"
        );
        assert_eq!(super::rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(
            super::parse_compact("20220323T120000Z"),
            Some(1_648_036_800)
        );
        assert_eq!(super::format_compact(1_648_036_800), "20220323T120000Z");
        for bad in [
            "20220323T120000",
            "2022-03-23T12:00:00Z",
            "20221323T120000Z",
            "20220323T250000Z",
            "2022032XT120000Z",
            "",
        ] {
            assert_eq!(super::parse_compact(bad), None, "{bad}");
        }
    }
}
