//! Compact ISO 8601 UTC timestamps, `YYYYMMDD'T'HHMMSS'Z'`, as AWS SigV4 (`X-Amz-Date`) and
//! Huawei SDK-HMAC-SHA256 (`X-Sdk-Date`) send them.

/// `YYYYMMDD'T'HHMMSS'Z'` -> Unix seconds; None if malformed or not a real date.
pub fn parse(value: &str) -> Option<i64> {
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
pub fn format(unix: i64) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(super::parse("20220323T120000Z"), Some(1_648_036_800));
        assert_eq!(super::format(1_648_036_800), "20220323T120000Z");
        for bad in [
            "20220323T120000",
            "2022-03-23T12:00:00Z",
            "20221323T120000Z",
            "20220323T250000Z",
            "2022032XT120000Z",
            "",
        ] {
            assert_eq!(super::parse(bad), None, "{bad}");
        }
    }
}
