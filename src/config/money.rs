//! Money in the configuration: written as dollars (`100`, `12.5`, `"0.0005"`), held as integer
//! micro-dollars. No floating point survives parsing: a YAML float is re-read from its shortest
//! decimal form, which is exactly what the user wrote.

use serde_yaml::Value;

/// Micro-dollars per dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// Parses a dollar amount into micro-dollars. Negative values, more than six decimals and
/// overflow are errors.
pub fn parse_usd(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.checked_mul(MICROS_PER_USD)
                    .ok_or_else(|| "amount is too large".to_string())
            } else if n.as_i64().is_some() {
                Err("amount must not be negative".into())
            } else {
                parse_decimal(&n.to_string())
            }
        }
        Value::String(s) => parse_decimal(s.trim()),
        _ => Err("expected a dollar amount such as 100 or \"12.50\"".into()),
    }
}

fn parse_decimal(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a dollar amount such as 100 or \"12.50\"");
    if s.starts_with('-') {
        return Err("amount must not be negative".into());
    }
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 6 {
        return Err(format!(
            "`{s}` has more than 6 decimals (micro-dollar precision)"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| "amount is too large".to_string())?
    };
    let mut frac_micros: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        frac_micros += u64::from(b - b'0') * 10u64.pow(5 - i as u32);
    }
    whole
        .checked_mul(MICROS_PER_USD)
        .and_then(|w| w.checked_add(frac_micros))
        .ok_or_else(|| "amount is too large".to_string())
}

/// Formats micro-dollars as dollars with six decimals, e.g. `12.500000`.
pub fn format_usd(micros: u64) -> String {
    format!("{}.{:06}", micros / MICROS_PER_USD, micros % MICROS_PER_USD)
}

/// Nano-dollars as a JSON number of dollars, rounded to micro-dollars: for reports whose readers
/// expect a number (the lab's). Money is counted in integers; this is only how it is shown.
pub fn usd_number(nanos: u64) -> f64 {
    usd(nanos, 6).parse().unwrap_or(0.0)
}

/// Formats nano-dollars as dollars with `decimals` places (rounded half up), e.g. `12.3457`.
pub fn usd(nanos: u64, decimals: u32) -> String {
    let decimals = decimals.min(9);
    let unit = 10u64.pow(9 - decimals);
    let scaled = (u128::from(nanos) + u128::from(unit / 2)) / u128::from(unit);
    let scale = 10u128.pow(decimals);
    if decimals == 0 {
        return format!("{scaled}");
    }
    format!(
        "{}.{:0width$}",
        scaled / scale,
        scaled % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn integers_floats_and_strings_become_exact_micros() {
        assert_eq!(parse_usd(&yaml("100")), Ok(100_000_000));
        assert_eq!(parse_usd(&yaml("12.5")), Ok(12_500_000));
        assert_eq!(parse_usd(&yaml("0.0005")), Ok(500));
        assert_eq!(parse_usd(&yaml("\"0.000001\"")), Ok(1));
        assert_eq!(
            parse_usd(&yaml("0.1")),
            Ok(100_000),
            "no binary float drift"
        );
    }

    #[test]
    fn rejects_negative_too_precise_and_non_numbers() {
        assert!(parse_usd(&yaml("-1")).is_err());
        assert!(parse_usd(&yaml("\"-0.5\"")).is_err());
        assert!(parse_usd(&yaml("\"0.0000001\"")).is_err());
        assert!(parse_usd(&yaml("\"ten\"")).is_err());
        assert!(parse_usd(&yaml("[1]")).is_err());
        assert!(parse_usd(&yaml("\".\"")).is_err());
    }

    #[test]
    fn rejects_overflow_instead_of_wrapping() {
        assert!(parse_usd(&yaml("18446744073709551615")).is_err());
    }

    #[test]
    fn formats_with_six_decimals() {
        assert_eq!(format_usd(12_500_000), "12.500000");
        assert_eq!(format_usd(1), "0.000001");
    }
}
