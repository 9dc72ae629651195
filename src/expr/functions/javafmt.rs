//! Java date/time patterns, as Flink uses them (always in UTC here):
//!
//! - [`Flavor::Modern`] is `java.time.format.DateTimeFormatter` (DATE_FORMAT of a timestamp,
//!   TO_TIMESTAMP with a format): strict widths, the whole text must match, `[...]` optional
//!   sections, `S` is a fraction of a second.
//! - [`Flavor::Simple`] is `java.text.SimpleDateFormat` (UNIX_TIMESTAMP, FROM_UNIXTIME,
//!   DATE_FORMAT of a string): lenient (out-of-range fields roll over), parses a prefix of the
//!   text, `S` is a number of milliseconds, `u` is the day number of the week.
//!
//! Also the proleptic Gregorian calendar arithmetic the date/time functions share (our own,
//! so that no input can make it panic or go out of a library's range). Zone pattern letters
//! print UTC (`z` → `UTC`, `Z` → `+0000`, `X` → `Z`); the English locale is assumed for names.

pub(super) const MS_PER_DAY: i64 = 86_400_000;

/// Years beyond this are refused by the lenient arithmetic (far outside any timestamp).
const MAX_ABS_YEAR: i64 = 100_000_000;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Monday first, as ISO numbers days.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12; any day, which may run
/// past the month). Howard Hinnant's `days_from_civil`.
pub(super) fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let m = i64::from(month);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(super) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Adds months to a date, keeping the day unless the month is shorter (Jan 31 + 1 month =
/// Feb 28/29), as Flink's `addMonths` does. `None` beyond any sensible year.
pub(super) fn add_months(year: i64, month: u32, day: u32, months: i64) -> Option<(i64, u32, u32)> {
    let total = year
        .checked_mul(12)?
        .checked_add(i64::from(month) - 1)?
        .checked_add(months)?;
    let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    if y.abs() > MAX_ABS_YEAR {
        return None;
    }
    Some((y, m, day.min(days_in_month(y, m))))
}

/// A point in time split into calendar fields (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Parts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
    pub epoch_day: i64,
}

impl Parts {
    pub(super) fn from_millis(millis: i64) -> Parts {
        let epoch_day = millis.div_euclid(MS_PER_DAY);
        let in_day = millis.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(epoch_day);
        Parts {
            year,
            month,
            day,
            hour: (in_day / 3_600_000) as u32,
            minute: (in_day / 60_000 % 60) as u32,
            second: (in_day / 1000 % 60) as u32,
            milli: (in_day % 1000) as u32,
            epoch_day,
        }
    }

    pub(super) fn millis_of_day(&self) -> i64 {
        i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.milli)
    }

    /// ISO day of the week: Monday = 1 … Sunday = 7.
    pub(super) fn iso_weekday(&self) -> u32 {
        iso_weekday(self.epoch_day)
    }

    /// Days since the last Sunday: Sunday = 0 … Saturday = 6.
    pub(super) fn days_since_sunday(&self) -> u32 {
        sunday_index(self.epoch_day)
    }

    pub(super) fn day_of_year(&self) -> u32 {
        (self.epoch_day - days_from_civil(self.year, 1, 1) + 1) as u32
    }

    pub(super) fn quarter(&self) -> u32 {
        (self.month - 1) / 3 + 1
    }

    /// ISO-8601 week-based year and week (weeks start on Monday; week 1 holds January 4).
    pub(super) fn iso_week(&self) -> (i64, u32) {
        let weeks_in = |year: i64| {
            let jan1 = iso_weekday(days_from_civil(year, 1, 1));
            if jan1 == 4 || (jan1 == 3 && is_leap(year)) {
                53
            } else {
                52
            }
        };
        let week = (i64::from(self.day_of_year()) - i64::from(self.iso_weekday()) + 10) / 7;
        if week < 1 {
            (self.year - 1, weeks_in(self.year - 1))
        } else if week > i64::from(weeks_in(self.year)) {
            (self.year + 1, 1)
        } else {
            (self.year, week as u32)
        }
    }

    /// US week-based year and week (weeks start on Sunday; week 1 holds January 1), what
    /// Java's `w`/`Y` mean in the US locale.
    pub(super) fn us_week(&self) -> (i64, u32) {
        let week_start = |day: i64| day - i64::from(sunday_index(day));
        let this = week_start(self.epoch_day);
        if this == week_start(days_from_civil(self.year + 1, 1, 1)) {
            return (self.year + 1, 1);
        }
        let first = week_start(days_from_civil(self.year, 1, 1));
        (self.year, ((this - first) / 7 + 1) as u32)
    }

    /// US week of the month (week 1 holds the 1st).
    fn us_week_of_month(&self) -> u32 {
        let first = days_from_civil(self.year, self.month, 1);
        (self.day - 1 + sunday_index(first)) / 7 + 1
    }
}

/// 1970-01-01 was a Thursday.
fn iso_weekday(epoch_day: i64) -> u32 {
    ((epoch_day + 3).rem_euclid(7) + 1) as u32
}

fn sunday_index(epoch_day: i64) -> u32 {
    (epoch_day + 4).rem_euclid(7) as u32
}

// ---------------------------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    /// `java.text.SimpleDateFormat`.
    Simple,
    /// `java.time.format.DateTimeFormatter`.
    Modern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Literal(String),
    /// A pattern letter repeated `count` times.
    Field(char, usize),
    /// `[...]` (Modern only): printed always, parsed if it matches.
    Optional(Vec<Item>),
}

/// Parses a pattern the way Java does, rejecting what Java rejects (unknown letters, too many
/// letters, unterminated quotes) and what is not implemented here.
pub(super) fn compile(pattern: &str, flavor: Flavor) -> Result<Vec<Item>, String> {
    let fail = |why: String| Err(format!("invalid date pattern '{pattern}': {why}"));
    let chars: Vec<char> = pattern.chars().collect();
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let top = stack.last_mut().expect("the stack is never empty");
        if c == '\'' {
            // `''` is a quote, inside or outside a quoted section.
            let mut literal = String::new();
            if chars.get(i + 1) == Some(&'\'') {
                literal.push('\'');
                i += 2;
            } else {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return fail("unterminated quote".to_string()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            literal.push(ch);
                            i += 1;
                        }
                    }
                }
            }
            push_literal(top, &literal);
        } else if c.is_ascii_alphabetic() {
            let count = chars[i..].iter().take_while(|&&x| x == c).count();
            if let Err(why) = check_letter(c, count, flavor) {
                return fail(why);
            }
            top.push(Item::Field(c, count));
            i += count;
        } else if flavor == Flavor::Modern && c == '[' {
            stack.push(Vec::new());
            i += 1;
        } else if flavor == Flavor::Modern && c == ']' {
            if stack.len() == 1 {
                return fail("`]` without `[`".to_string());
            }
            let inner = stack.pop().unwrap_or_default();
            if let Some(top) = stack.last_mut() {
                top.push(Item::Optional(inner));
            }
            i += 1;
        } else if flavor == Flavor::Modern && matches!(c, '{' | '}' | '#') {
            return fail(format!("`{c}` is reserved"));
        } else {
            push_literal(top, &c.to_string());
            i += 1;
        }
    }
    // DateTimeFormatter closes sections left open at the end.
    while stack.len() > 1 {
        let inner = stack.pop().unwrap_or_default();
        if let Some(top) = stack.last_mut() {
            top.push(Item::Optional(inner));
        }
    }
    Ok(stack.pop().unwrap_or_default())
}

fn push_literal(items: &mut Vec<Item>, text: &str) {
    if let Some(Item::Literal(last)) = items.last_mut() {
        last.push_str(text);
    } else {
        items.push(Item::Literal(text.to_string()));
    }
}

fn check_letter(c: char, count: usize, flavor: Flavor) -> Result<(), String> {
    match flavor {
        Flavor::Simple => {
            if !"GyYMLwWDdFEuaHkKhmsSzZX".contains(c) {
                return Err(format!("illegal pattern character '{c}'"));
            }
            if c == 'X' && count > 3 {
                return Err(format!("invalid ISO 8601 format: length={count}"));
            }
        }
        Flavor::Modern => {
            let max = match c {
                'a' => 1,
                'H' | 'h' | 'K' | 'k' | 'm' | 's' | 'd' | 'w' => 2,
                'W' => 1,
                'D' => 3,
                'z' => 4,
                'M' | 'L' | 'Q' | 'q' | 'E' | 'e' | 'c' | 'G' | 'Z' | 'X' | 'x' => 5,
                'S' => 9,
                'A' | 'n' | 'N' | 'y' | 'u' | 'Y' => 19,
                'V' | 'v' | 'O' | 'g' | 'F' | 'B' => {
                    return Err(format!("pattern letter '{c}' is not supported"));
                }
                _ => return Err(format!("unknown pattern letter '{c}'")),
            };
            if count > max || (c == 'c' && count == 2) {
                return Err(format!("too many pattern letters '{c}'"));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

pub(super) fn format(items: &[Item], flavor: Flavor, millis: i64) -> String {
    let parts = Parts::from_millis(millis);
    let mut out = String::new();
    format_items(items, flavor, &parts, &mut out);
    out
}

fn format_items(items: &[Item], flavor: Flavor, p: &Parts, out: &mut String) {
    for item in items {
        match item {
            Item::Literal(s) => out.push_str(s),
            Item::Optional(inner) => format_items(inner, flavor, p, out),
            Item::Field(c, n) => format_field(*c, *n, flavor, p, out),
        }
    }
}

fn pad(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", value.unsigned_abs()));
}

/// Text forms: 3 letters or fewer is the short name, 4 the full name, 5 (Modern) the first
/// letter; SimpleDateFormat uses the full name from 4 letters on.
fn name(out: &mut String, full: &str, count: usize, flavor: Flavor) {
    match count {
        0..=3 => out.push_str(&full[..3]),
        5 if flavor == Flavor::Modern => out.push_str(&full[..1]),
        _ => out.push_str(full),
    }
}

fn format_field(c: char, n: usize, flavor: Flavor, p: &Parts, out: &mut String) {
    let modern = flavor == Flavor::Modern;
    let year_of_era = if p.year <= 0 { 1 - p.year } else { p.year };
    let year = |out: &mut String, y: i64| {
        if n == 2 {
            pad(out, y.rem_euclid(100), 2);
        } else {
            pad(out, y, n);
        }
    };
    match c {
        'G' => {
            let ad = p.year > 0;
            out.push_str(match (n, ad) {
                (4, true) if modern => "Anno Domini",
                (4, false) if modern => "Before Christ",
                (5, true) if modern => "A",
                (5, false) if modern => "B",
                (_, true) => "AD",
                (_, false) => "BC",
            });
        }
        'y' => year(out, year_of_era),
        'u' if modern => year(out, p.year),
        'u' => pad(out, i64::from(p.iso_weekday()), n),
        'Y' => year(out, p.us_week().0),
        'M' | 'L' if n <= 2 => pad(out, i64::from(p.month), n),
        'M' | 'L' => name(out, MONTHS[p.month as usize - 1], n, flavor),
        'Q' | 'q' => {
            let q = p.quarter();
            match n {
                1 | 5 => pad(out, i64::from(q), 1),
                2 => pad(out, i64::from(q), 2),
                3 => out.push_str(&format!("Q{q}")),
                _ => out.push_str(["1st", "2nd", "3rd", "4th"][q as usize - 1]),
            }
            if n == 4 {
                out.push_str(" quarter");
            }
        }
        'w' => pad(out, i64::from(p.us_week().1), n),
        'W' => pad(out, i64::from(p.us_week_of_month()), n),
        'D' => pad(out, i64::from(p.day_of_year()), n),
        'd' => pad(out, i64::from(p.day), n),
        'F' => pad(out, i64::from((p.day - 1) / 7 + 1), n),
        'E' => name(out, WEEKDAYS[p.iso_weekday() as usize - 1], n, flavor),
        'e' | 'c' if n <= 2 => pad(out, i64::from(p.days_since_sunday() + 1), n),
        'e' | 'c' => name(out, WEEKDAYS[p.iso_weekday() as usize - 1], n, flavor),
        'a' => out.push_str(if p.hour < 12 { "AM" } else { "PM" }),
        'H' => pad(out, i64::from(p.hour), n),
        'k' => pad(out, i64::from(if p.hour == 0 { 24 } else { p.hour }), n),
        'K' => pad(out, i64::from(p.hour % 12), n),
        'h' => pad(
            out,
            i64::from(if p.hour.is_multiple_of(12) {
                12
            } else {
                p.hour % 12
            }),
            n,
        ),
        'm' => pad(out, i64::from(p.minute), n),
        's' => pad(out, i64::from(p.second), n),
        'S' if modern => {
            let nanos = format!("{:09}", u64::from(p.milli) * 1_000_000);
            out.push_str(&nanos[..n.min(9)]);
        }
        'S' => pad(out, i64::from(p.milli), n),
        'A' => pad(out, p.millis_of_day(), n),
        'n' => pad(out, i64::from(p.milli) * 1_000_000, n),
        'N' => pad(out, p.millis_of_day() * 1_000_000, n),
        'z' => out.push_str(if n < 4 {
            "UTC"
        } else {
            "Coordinated Universal Time"
        }),
        'Z' if modern && n == 4 => out.push_str("GMT"),
        'Z' if modern && n == 5 => out.push('Z'),
        'Z' => out.push_str("+0000"),
        'X' => out.push('Z'),
        'x' => out.push_str(match n {
            1 => "+00",
            2 | 4 => "+0000",
            _ => "+00:00",
        }),
        // `compile` admits no other letters.
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Fields read from text, resolved into an instant afterwards.
#[derive(Clone, Default, Debug)]
struct Fields {
    year: Option<i64>,
    /// `year` came from `y` (year of era, needs the era) rather than `u`.
    year_of_era: bool,
    before_christ: bool,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    hour_of_day: Option<i64>,
    /// 0–11, from `h` (12 read as 0) or `K`.
    hour_of_half_day: Option<i64>,
    pm: Option<bool>,
    minute: Option<i64>,
    second: Option<i64>,
    nano: Option<i64>,
    offset_seconds: Option<i64>,
}

fn is_numeric(c: char, n: usize, flavor: Flavor) -> bool {
    match c {
        'M' | 'L' | 'Q' | 'q' | 'e' | 'c' => n <= 2,
        'u' => true,
        _ => "yYwWDdFHkKhmsSAnN".contains(c) && !(c == 'F' && flavor == Flavor::Modern),
    }
}

/// Width limits of a numeric field: (minimum, maximum) digits.
fn widths(c: char, n: usize, flavor: Flavor) -> (usize, usize) {
    match flavor {
        // SimpleDateFormat reads any number of digits unless the next field abuts.
        Flavor::Simple => (1, usize::MAX),
        Flavor::Modern => match (c, n) {
            ('S', _) => (n, n),
            ('y' | 'u' | 'Y', 2) => (2, 2),
            (_, 1) => (1, 19),
            ('D', 2) => (2, 3),
            ('y' | 'u' | 'Y' | 'A' | 'n' | 'N', _) => (n, 19),
            _ => (n, n),
        },
    }
}

/// SimpleDateFormat.parse in UTC: the instant in milliseconds, or `None` where Java throws a
/// ParseException. Text after the pattern is ignored; out-of-range fields roll over.
pub(super) fn parse_simple(items: &[Item], text: &str) -> Option<i64> {
    let mut fields = Fields::default();
    parse_items(items, Flavor::Simple, text, 0, &mut fields)?;
    resolve_lenient(&fields)
}

/// DateTimeFormatter.parse followed by Flink's `fromTemporalAccessor` (missing fields
/// default to 1970-01-01 00:00:00, a parsed offset is ignored): local milliseconds, or `None`
/// where Java throws.
pub(super) fn parse_modern(items: &[Item], text: &str) -> Option<i64> {
    let mut fields = Fields::default();
    let end = parse_items(items, Flavor::Modern, text, 0, &mut fields)?;
    if end != text.len() {
        return None;
    }
    resolve_smart(&fields)
}

fn parse_items(
    items: &[Item],
    flavor: Flavor,
    text: &str,
    mut pos: usize,
    fields: &mut Fields,
) -> Option<usize> {
    for (k, item) in items.iter().enumerate() {
        match item {
            Item::Literal(l) => {
                pos += text[pos..].starts_with(l.as_str()).then_some(l.len())?;
            }
            Item::Optional(inner) => {
                let mut trial = fields.clone();
                if let Some(after) = parse_items(inner, flavor, text, pos, &mut trial) {
                    *fields = trial;
                    pos = after;
                }
            }
            Item::Field(c, n) => {
                if flavor == Flavor::Simple {
                    // SimpleDateFormat skips spaces and tabs before every field.
                    pos += text[pos..].len() - text[pos..].trim_start_matches([' ', '\t']).len();
                }
                pos = if is_numeric(*c, *n, flavor) {
                    parse_number(*c, *n, flavor, text, pos, &items[k + 1..], fields)?
                } else {
                    parse_text(*c, *n, flavor, text, pos, fields)?
                };
            }
        }
    }
    Some(pos)
}

/// Digits a variable-width field must leave to the fixed-width numeric fields right after it
/// (DateTimeFormatter's adjacent value parsing, `yyyyMMdd`); for SimpleDateFormat, whether
/// the next field abuts, in which case this one reads at most its letter count.
fn reserved_digits(rest: &[Item], flavor: Flavor) -> usize {
    let mut reserved = 0;
    for item in rest {
        match item {
            Item::Field(c, n) if is_numeric(*c, *n, flavor) => {
                let (min, max) = widths(*c, *n, flavor);
                if min != max {
                    break;
                }
                reserved += min;
            }
            _ => break,
        }
    }
    reserved
}

fn parse_number(
    c: char,
    n: usize,
    flavor: Flavor,
    text: &str,
    pos: usize,
    rest: &[Item],
    f: &mut Fields,
) -> Option<usize> {
    let available = text[pos..].bytes().take_while(u8::is_ascii_digit).count();
    let (min, mut max) = widths(c, n, flavor);
    match flavor {
        Flavor::Simple => {
            let abuts =
                matches!(rest.first(), Some(Item::Field(c2, n2)) if is_numeric(*c2, *n2, flavor));
            if abuts {
                max = n;
            }
        }
        Flavor::Modern if min != max => {
            max = max.min(available.checked_sub(reserved_digits(rest, flavor))?);
        }
        Flavor::Modern => {}
    }
    let take = available.min(max);
    if take < min {
        return None;
    }
    let digits = &text[pos..pos + take];
    let value: i64 = digits.parse().ok()?;
    let modern = flavor == Flavor::Modern;
    match c {
        'y' => {
            f.year = Some(match (flavor, n, take) {
                (Flavor::Modern, 2, _) => 2000 + value,
                (Flavor::Simple, 1..=2, 2) => two_digit_year(value),
                _ => value,
            });
            f.year_of_era = true;
        }
        'u' if modern => {
            f.year = Some(value);
            f.year_of_era = false;
        }
        'M' | 'L' => f.month = Some(value),
        'd' => f.day = Some(value),
        'D' => f.day_of_year = Some(value),
        'H' => f.hour_of_day = Some(value),
        // `k` is 1–24 and `h` 1–12: the top value means 0.
        'k' => f.hour_of_day = Some(if value == 24 { 0 } else { value }),
        'h' => {
            if modern && !(1..=12).contains(&value) {
                return None;
            }
            f.hour_of_half_day = Some(value % 12);
        }
        'K' => f.hour_of_half_day = Some(value),
        'm' => f.minute = Some(value),
        's' => f.second = Some(value),
        'S' if modern => f.nano = Some(value * 10i64.pow(9 - n as u32)),
        'S' => f.nano = Some(value.checked_mul(1_000_000)?),
        'n' => f.nano = Some(value),
        // Week and day-of-week numbers, quarters, milli/nano-of-day: read, not used.
        _ => {}
    }
    Some(pos + take)
}

/// SimpleDateFormat's two-digit years fall within 80 years before and 20 after today.
fn two_digit_year(yy: i64) -> i64 {
    // Java resolves two-digit years against today, so this reads the clock (through the one
    // place allowed to).
    let now_ms = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let start = Parts::from_millis(now_ms).year - 80;
    let candidate = start - start.rem_euclid(100) + yy;
    if candidate < start {
        candidate + 100
    } else {
        candidate
    }
}

/// Matches one of `names` at `pos`; SimpleDateFormat ignores case, DateTimeFormatter not.
fn match_name(text: &str, pos: usize, names: &[&str], flavor: Flavor) -> Option<(usize, usize)> {
    let rest = &text[pos..];
    names.iter().enumerate().find_map(|(i, name)| {
        let head = rest.get(..name.len())?;
        let same = match flavor {
            Flavor::Simple => head.eq_ignore_ascii_case(name),
            Flavor::Modern => head == *name,
        };
        same.then_some((i, pos + name.len()))
    })
}

/// Full and short names, full first so that "June" is not read as "Jun" + "e".
fn names_for(full: &[&'static str], n: usize, flavor: Flavor) -> Vec<&'static str> {
    match (flavor, n) {
        (Flavor::Modern, 4) => full.to_vec(),
        (Flavor::Modern, _) => full.iter().map(|s| &s[..3]).collect(),
        (Flavor::Simple, _) => full
            .iter()
            .copied()
            .chain(full.iter().map(|s| &s[..3]))
            .collect(),
    }
}

fn parse_text(
    c: char,
    n: usize,
    flavor: Flavor,
    text: &str,
    pos: usize,
    f: &mut Fields,
) -> Option<usize> {
    match c {
        'M' | 'L' => {
            let names = names_for(&MONTHS, n, flavor);
            let (i, end) = match_name(text, pos, &names, flavor)?;
            f.month = Some((i % 12) as i64 + 1);
            Some(end)
        }
        'E' | 'e' | 'c' => {
            let names = names_for(&WEEKDAYS, n, flavor);
            match_name(text, pos, &names, flavor).map(|(_, end)| end)
        }
        'a' => {
            let (i, end) = match_name(text, pos, &["AM", "PM"], flavor)?;
            f.pm = Some(i == 1);
            Some(end)
        }
        'G' => {
            let (i, end) = match_name(text, pos, &["AD", "BC"], flavor)?;
            f.before_christ = i == 1;
            Some(end)
        }
        'Q' | 'q' => {
            let names = [
                "Q1",
                "Q2",
                "Q3",
                "Q4",
                "1st quarter",
                "2nd quarter",
                "3rd quarter",
                "4th quarter",
            ];
            match_name(text, pos, &names, flavor).map(|(_, end)| end)
        }
        'z' | 'Z' | 'X' | 'x' => {
            let (offset, end) = parse_offset(text, pos)?;
            f.offset_seconds = Some(offset);
            Some(end)
        }
        _ => None,
    }
}

/// A zone offset: `Z`, `UTC`/`GMT` with an optional offset, or `±hh[[:]mm[[:]ss]]`.
fn parse_offset(text: &str, pos: usize) -> Option<(i64, usize)> {
    let rest = &text[pos..];
    if rest.starts_with('Z') {
        return Some((0, pos + 1));
    }
    let (prefix, rest) = match rest.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("UTC") || p.eq_ignore_ascii_case("GMT") => {
            (3, &rest[3..])
        }
        _ => (0, rest),
    };
    let sign = match rest.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ if prefix > 0 => return Some((0, pos + prefix)),
        _ => return None,
    };
    let b = rest.as_bytes();
    let mut i = 1;
    let read2 = |i: &mut usize, optional_colon: bool| -> Option<i64> {
        let mut j = *i;
        if optional_colon && b.get(j) == Some(&b':') {
            j += 1;
        }
        let d = b.get(j..j + 2)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *i = j + 2;
        Some(i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
    };
    let hours = read2(&mut i, false)?;
    let minutes = read2(&mut i, true).unwrap_or(0);
    // Seconds only follow minutes.
    let seconds = if i > 3 {
        read2(&mut i, true).unwrap_or(0)
    } else {
        0
    };
    let offset = sign * (hours * 3600 + minutes * 60 + seconds);
    Some((offset, pos + prefix + i))
}

/// SimpleDateFormat's lenient GregorianCalendar: every field may overflow into the next.
fn resolve_lenient(f: &Fields) -> Option<i64> {
    let mut year = f.year.unwrap_or(1970);
    if f.year_of_era && f.before_christ {
        year = 1 - year;
    }
    if year.abs() > MAX_ABS_YEAR {
        return None;
    }
    let epoch_day = match (f.day_of_year, f.month, f.day) {
        (Some(doy), None, None) => days_from_civil(year, 1, 1).checked_add(doy - 1)?,
        _ => {
            let (y, m, _) = add_months(year, 1, 1, f.month.unwrap_or(1) - 1)?;
            days_from_civil(y, m, 1).checked_add(f.day.unwrap_or(1).checked_sub(1)?)?
        }
    };
    let hour = match (f.hour_of_day, f.hour_of_half_day) {
        (Some(h), _) => h,
        (None, Some(h)) => h.checked_add(if f.pm == Some(true) { 12 } else { 0 })?,
        (None, None) => 0,
    };
    let time = hour
        .checked_mul(3_600_000)?
        .checked_add(f.minute.unwrap_or(0).checked_mul(60_000)?)?
        .checked_add(f.second.unwrap_or(0).checked_mul(1000)?)?
        .checked_add(f.nano.unwrap_or(0) / 1_000_000)?
        .checked_sub(f.offset_seconds.unwrap_or(0) * 1000)?;
    epoch_day.checked_mul(MS_PER_DAY)?.checked_add(time)
}

/// DateTimeFormatter's SMART resolver plus Flink's defaults: fields must be in range, a
/// day past the end of its month is moved back to the last day, a 12-hour clock without
/// AM/PM is not resolved (so the hour stays 0).
fn resolve_smart(f: &Fields) -> Option<i64> {
    let in_range = |v: Option<i64>, lo: i64, hi: i64| v.is_none_or(|v| (lo..=hi).contains(&v));
    if !(in_range(f.month, 1, 12)
        && in_range(f.day, 1, 31)
        && in_range(f.day_of_year, 1, 366)
        && in_range(f.hour_of_day, 0, 23)
        && in_range(f.hour_of_half_day, 0, 11)
        && in_range(f.minute, 0, 59)
        && in_range(f.second, 0, 59)
        && in_range(f.nano, 0, 999_999_999))
    {
        return None;
    }
    let year = match f.year {
        Some(y) if f.year_of_era => {
            if y < 1 {
                return None;
            }
            if f.before_christ { 1 - y } else { y }
        }
        Some(y) => y,
        None => 1970,
    };
    if year.abs() > MAX_ABS_YEAR {
        return None;
    }
    let month = f.month.unwrap_or(1) as u32;
    let epoch_day = match (f.year, f.month, f.day, f.day_of_year) {
        (Some(_), None, None, Some(doy)) => {
            if doy == 366 && !is_leap(year) {
                return None;
            }
            days_from_civil(year, 1, doy)
        }
        (Some(_), Some(_), Some(d), _) => {
            days_from_civil(year, month, d.min(i64::from(days_in_month(year, month))))
        }
        (_, _, d, _) => {
            // Without a resolved date Flink builds LocalDateTime.of(1970|year, month, day),
            // which rejects a day past the month's end.
            let d = d.unwrap_or(1);
            if d > i64::from(days_in_month(year, month)) {
                return None;
            }
            days_from_civil(year, month, d)
        }
    };
    let hour = match (f.hour_of_day, f.hour_of_half_day, f.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), Some(pm)) => h + if pm { 12 } else { 0 },
        _ => 0,
    };
    let time = hour * 3_600_000
        + f.minute.unwrap_or(0) * 60_000
        + f.second.unwrap_or(0) * 1000
        + f.nano.unwrap_or(0) / 1_000_000;
    epoch_day.checked_mul(MS_PER_DAY)?.checked_add(time)
}

/// Flink's `DEFAULT_TIMESTAMP_FORMATTER` (TO_TIMESTAMP with one argument):
/// `yyyy-[MM][M]-[dd][d][ [HH][H]:[mm][m]:[ss][s][.fraction]]`, the whole text.
pub(super) fn parse_flink_default(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let mut i = 0;
    // Up to `max` digits (at least `min`); `None` when absent and allowed to be.
    let number = |i: &mut usize, min: usize, max: usize| -> Option<Option<i64>> {
        let len = b[*i..]
            .iter()
            .take(max)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if len < min {
            return None;
        }
        let digits = &text[*i..*i + len];
        *i += len;
        Some(digits.parse().ok())
    };
    let expect = |i: &mut usize, c: u8| -> Option<()> { (b.get(*i) == Some(&c)).then(|| *i += 1) };
    let year = number(&mut i, 4, 4)??;
    expect(&mut i, b'-')?;
    let month = number(&mut i, 0, 2)?;
    expect(&mut i, b'-')?;
    let day = number(&mut i, 0, 2)?;
    let mut f = Fields {
        year: Some(year),
        month,
        day,
        ..Fields::default()
    };
    if i < b.len() {
        expect(&mut i, b' ')?;
        f.hour_of_day = number(&mut i, 0, 2)?;
        expect(&mut i, b':')?;
        f.minute = number(&mut i, 0, 2)?;
        expect(&mut i, b':')?;
        f.second = number(&mut i, 0, 2)?;
        if expect(&mut i, b'.').is_some() {
            let start = i;
            let digits = number(&mut i, 0, 9)?.unwrap_or(0);
            let scale = 9 - (i - start) as u32;
            f.nano = Some(digits * 10i64.pow(scale));
        }
    }
    if i != b.len() {
        return None;
    }
    resolve_smart(&f)
}

/// `java.sql.Timestamp.valueOf` / `java.sql.Date.valueOf`, Flink's fallback when
/// TO_TIMESTAMP's format does not match: `yyyy-[m]m-[d]d[ hh:mm:ss[.f…]]` after trimming,
/// with lenient overflow of the time fields.
pub(super) fn parse_sql_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.split_once(' ') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || !(1..=2).contains(&m.len()) || !(1..=2).contains(&d.len()) {
        return None;
    }
    let int = |s: &str| -> Option<i64> {
        // Integer.parseInt: optional sign, digits.
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day) = (int(y)?, int(m)?, int(d)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut f = Fields {
        year: Some(year),
        month: Some(month),
        day: Some(day),
        ..Fields::default()
    };
    if let Some(time) = time {
        let mut hms = time.splitn(3, ':');
        let (h, mi, rest) = (hms.next()?, hms.next()?, hms.next()?);
        let (s, fraction) = match rest.split_once('.') {
            Some((s, fr)) => (s, Some(fr)),
            None => (rest, None),
        };
        f.hour_of_day = Some(int(h)?);
        f.minute = Some(int(mi)?);
        f.second = Some(int(s)?);
        if let Some(fr) = fraction {
            if fr.is_empty() || fr.len() > 9 || !fr.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            f.nano = Some(fr.parse::<i64>().ok()? * 10i64.pow(9 - fr.len() as u32));
        }
    }
    resolve_lenient(&f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, mo: u32, d: i64, h: i64, mi: i64, s: i64, milli: i64) -> i64 {
        days_from_civil(y, mo, d) * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + milli
    }

    fn fmt(pattern: &str, flavor: Flavor, millis: i64) -> String {
        format(&compile(pattern, flavor).unwrap(), flavor, millis)
    }

    #[test]
    fn calendar_round_trips() {
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, i64::from(d)), day);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 0), days_from_civil(2000, 2, 29));
        assert_eq!(add_months(2020, 1, 31, 1), Some((2020, 2, 29)));
        assert_eq!(add_months(2020, 1, 31, -2), Some((2019, 11, 30)));
        assert_eq!(add_months(2020, 1, 31, i64::MAX), None);
    }

    #[test]
    fn weeks() {
        let p = |y, m, d| Parts::from_millis(days_from_civil(y, m, d) * MS_PER_DAY);
        // 1994-09-27 (Flink docs: WEEK 39, DAYOFYEAR 270, DAYOFWEEK 3).
        let x = p(1994, 9, 27);
        assert_eq!(x.iso_week(), (1994, 39));
        assert_eq!(x.day_of_year(), 270);
        assert_eq!(x.days_since_sunday() + 1, 3);
        assert_eq!(p(2021, 1, 3).iso_week(), (2020, 53));
        assert_eq!(p(2019, 12, 30).iso_week(), (2020, 1));
        assert_eq!(p(2023, 12, 31).us_week(), (2024, 1));
        assert_eq!(p(2024, 1, 6).us_week(), (2024, 1));
        assert_eq!(p(2024, 1, 7).us_week(), (2024, 2));
        assert_eq!(p(1969, 12, 31).iso_weekday(), 3);
    }

    #[test]
    fn patterns_compile_like_java() {
        use Item::{Field, Literal, Optional};
        assert_eq!(
            compile("yyyy-MM-dd'T'HH''", Flavor::Modern).unwrap(),
            vec![
                Field('y', 4),
                Literal("-".into()),
                Field('M', 2),
                Literal("-".into()),
                Field('d', 2),
                Literal("T".into()),
                Field('H', 2),
                Literal("'".into()),
            ]
        );
        assert_eq!(
            compile("HH[:mm]", Flavor::Modern).unwrap(),
            vec![
                Field('H', 2),
                Optional(vec![Literal(":".into()), Field('m', 2)])
            ]
        );
        assert_eq!(
            compile("'it''s' a", Flavor::Simple).unwrap(),
            vec![Literal("it's ".into()), Field('a', 1)]
        );
        assert!(compile("yyyy 'x", Flavor::Simple).is_err());
        assert!(compile("bb", Flavor::Modern).is_err());
        assert!(compile("HHH", Flavor::Modern).is_err());
        assert!(compile("HHH", Flavor::Simple).is_ok());
        assert!(compile("Q", Flavor::Simple).is_err());
        assert!(compile("yyyy]", Flavor::Modern).is_err());
        assert!(compile("{", Flavor::Modern).is_err());
        assert!(compile("[yyyy", Flavor::Modern).is_ok());
        assert!(compile("[yyyy", Flavor::Simple).is_ok());
        assert!(compile("XXXX", Flavor::Simple).is_err());
        assert!(
            compile("VV", Flavor::Modern)
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn formats_like_java() {
        let t = ms(2019, 1, 7, 7, 21, 58, 57);
        let modern = |p: &str| fmt(p, Flavor::Modern, t);
        let simple = |p: &str| fmt(p, Flavor::Simple, t);
        assert_eq!(modern("yyyy-MM-dd HH:mm:ss.SSS"), "2019-01-07 07:21:58.057");
        assert_eq!(modern("yy/M/d H:m:s"), "19/1/7 7:21:58");
        assert_eq!(modern("EEE, d MMM yyyy"), "Mon, 7 Jan 2019");
        assert_eq!(modern("EEEE MMMM"), "Monday January");
        assert_eq!(modern("MMMMM EEEEE"), "J M");
        assert_eq!(modern("hh a KK kk"), "07 AM 07 07");
        assert_eq!(modern("S SS SSSS"), "0 05 0570");
        assert_eq!(modern("D DDD w W e c"), "7 007 2 2 2 2");
        assert_eq!(modern("Q QQ QQQ QQQQ"), "1 01 Q1 1st quarter");
        assert_eq!(modern("G GGGG u"), "AD Anno Domini 2019");
        assert_eq!(modern("z Z X x xxx ZZZZZ"), "UTC +0000 Z +00 +00:00 Z");
        assert_eq!(modern("'week' ww"), "week 02");
        assert_eq!(
            modern("yyyy-MM-dd'T'HH:mm:ss[.SSS]"),
            "2019-01-07T07:21:58.057"
        );
        assert_eq!(simple("S SSS SSSS"), "57 057 0057");
        assert_eq!(simple("u F E EEEE MMMMM"), "1 1 Mon Monday January");
        assert_eq!(simple("yyyy-MM-dd HH:mm:ss"), "2019-01-07 07:21:58");
        assert_eq!(simple("zzzz"), "Coordinated Universal Time");
        assert_eq!(simple("[yyyy]"), "[2019]");
        let midnight = ms(2019, 1, 7, 0, 0, 0, 0);
        assert_eq!(fmt("h a k K", Flavor::Modern, midnight), "12 AM 24 0");
        let noon = ms(2019, 1, 7, 12, 30, 0, 0);
        assert_eq!(fmt("h:mm a", Flavor::Modern, noon), "12:30 PM");
        assert_eq!(fmt("yyyy-MM-dd", Flavor::Modern, -1), "1969-12-31");
        assert_eq!(
            fmt("yyyy G", Flavor::Modern, ms(0, 1, 1, 0, 0, 0, 0)),
            "0001 BC"
        );
        assert_eq!(fmt("uuuu", Flavor::Modern, ms(0, 1, 1, 0, 0, 0, 0)), "0000");
    }

    #[test]
    fn parses_with_simple_date_format_rules() {
        let p = |pattern: &str, text: &str| {
            parse_simple(&compile(pattern, Flavor::Simple).unwrap(), text)
        };
        let std = "yyyy-MM-dd HH:mm:ss";
        assert_eq!(
            p(std, "2019-01-07 07:21:58"),
            Some(ms(2019, 1, 7, 7, 21, 58, 0))
        );
        // Trailing text is ignored, fields roll over, widths are free.
        assert_eq!(
            p(std, "2019-01-07 07:21:58.999 junk"),
            Some(ms(2019, 1, 7, 7, 21, 58, 0))
        );
        assert_eq!(
            p(std, "2019-13-01 00:00:00"),
            Some(ms(2020, 1, 1, 0, 0, 0, 0))
        );
        assert_eq!(
            p(std, "2019-02-30 25:00:00"),
            Some(ms(2019, 3, 3, 1, 0, 0, 0))
        );
        assert_eq!(
            p(std, "2019-1-7 7:21:58"),
            Some(ms(2019, 1, 7, 7, 21, 58, 0))
        );
        assert_eq!(p(std, "2019-01-07"), None);
        assert_eq!(p(std, ""), None);
        assert_eq!(p("yyyyMMdd", "20190107"), Some(ms(2019, 1, 7, 0, 0, 0, 0)));
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss.SSS", "1970-01-01 00:00:01.5"),
            Some(1005)
        );
        // Flink docs: '1970-01-01 08:00:01.001 +0800' with '... X' is 1 second in any zone.
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss.SSS X", "1970-01-01 08:00:01.001 +0800"),
            Some(1001)
        );
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss Z", "1970-01-01 00:00:00 -0130"),
            Some(5_400_000)
        );
        assert_eq!(
            p("yyyy-MM-dd HH:mm z", "1970-01-01 00:00 GMT+01:00"),
            Some(-3_600_000)
        );
        assert_eq!(
            p("dd MMM yyyy", "07 jan 2019"),
            Some(ms(2019, 1, 7, 0, 0, 0, 0))
        );
        assert_eq!(
            p("dd MMM yyyy", "07 June 2019"),
            Some(ms(2019, 6, 7, 0, 0, 0, 0))
        );
        assert_eq!(
            p("EEE, dd MMM yyyy", "Mon, 07 Jan 2019"),
            Some(ms(2019, 1, 7, 0, 0, 0, 0))
        );
        assert_eq!(p("hh:mm a", "12:30 pm"), Some(ms(1970, 1, 1, 12, 30, 0, 0)));
        assert_eq!(p("hh:mm a", "12:30 AM"), Some(ms(1970, 1, 1, 0, 30, 0, 0)));
        assert_eq!(p("yyyy  MM", "2019\t 3"), None);
        assert_eq!(p("KK a", "9223372036854775807 PM"), None);
        assert_eq!(p("HH", "99999999999999999999"), None);
        assert_eq!(p("yyyy MM", "2019  3"), Some(ms(2019, 3, 1, 0, 0, 0, 0)));
        let yy = p("yy", "05").unwrap();
        assert!(Parts::from_millis(yy).year % 100 == 5);
    }

    #[test]
    fn parses_with_date_time_formatter_rules() {
        let p = |pattern: &str, text: &str| {
            parse_modern(&compile(pattern, Flavor::Modern).unwrap(), text)
        };
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss", "2019-01-07 07:21:58"),
            Some(ms(2019, 1, 7, 7, 21, 58, 0))
        );
        assert_eq!(p("yyyy-MM-dd HH:mm:ss", "2019-1-07 07:21:58"), None);
        assert_eq!(p("yyyy-MM-dd HH:mm:ss", "2019-01-07 07:21:58x"), None);
        assert_eq!(
            p("yyyy-MM-dd", "2019-02-30"),
            Some(ms(2019, 2, 28, 0, 0, 0, 0))
        );
        assert_eq!(p("yyyy-MM-dd", "2019-02-32"), None);
        assert_eq!(p("yyyy-MM-dd", "2019-13-01"), None);
        assert_eq!(
            p("yyyyMMddHHmm", "201901070721"),
            Some(ms(2019, 1, 7, 7, 21, 0, 0))
        );
        assert_eq!(p("yyyy-M-d", "2019-1-7"), Some(ms(2019, 1, 7, 0, 0, 0, 0)));
        assert_eq!(p("dd/MM/yy", "07/01/19"), Some(ms(2019, 1, 7, 0, 0, 0, 0)));
        assert_eq!(p("HH:mm", "12:30"), Some(ms(1970, 1, 1, 12, 30, 0, 0)));
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss.SSS", "2019-01-07 07:21:58.123"),
            Some(ms(2019, 1, 7, 7, 21, 58, 123))
        );
        assert_eq!(p("yyyy-MM-dd HH:mm:ss.SSS", "2019-01-07 07:21:58.12"), None);
        assert_eq!(
            p("yyyy-MM-dd[ HH:mm]", "2019-01-07"),
            Some(ms(2019, 1, 7, 0, 0, 0, 0))
        );
        assert_eq!(
            p("yyyy-MM-dd[ HH:mm]", "2019-01-07 10:11"),
            Some(ms(2019, 1, 7, 10, 11, 0, 0))
        );
        assert_eq!(
            p("dd MMM yyyy", "07 Jan 2019"),
            Some(ms(2019, 1, 7, 0, 0, 0, 0))
        );
        assert_eq!(p("dd MMM yyyy", "07 jan 2019"), None);
        assert_eq!(p("hh:mm a", "01:30 PM"), Some(ms(1970, 1, 1, 13, 30, 0, 0)));
        // The hour of a 12-hour clock without AM/PM stays unresolved: only minutes count.
        assert_eq!(p("hh:mm", "01:30"), Some(1_800_000));
        assert_eq!(p("hh:mm", "13:30"), None);
        // Flink ignores a parsed offset.
        assert_eq!(
            p("yyyy-MM-dd HH:mm X", "2019-01-07 10:00 +0800"),
            Some(ms(2019, 1, 7, 10, 0, 0, 0))
        );
        assert_eq!(p("MM-dd", "02-30"), None);
        assert_eq!(
            p("yyyy-DDD", "2020-366"),
            Some(ms(2020, 12, 31, 0, 0, 0, 0))
        );
    }

    #[test]
    fn flink_default_and_sql_fallback() {
        let d = parse_flink_default;
        assert_eq!(d("2019-01-07 07:21:58"), Some(ms(2019, 1, 7, 7, 21, 58, 0)));
        assert_eq!(
            d("2019-01-07 07:21:58.1"),
            Some(ms(2019, 1, 7, 7, 21, 58, 100))
        );
        assert_eq!(
            d("2019-01-07 07:21:58.123456789"),
            Some(ms(2019, 1, 7, 7, 21, 58, 123))
        );
        assert_eq!(d("2019-1-7 7:2:5"), Some(ms(2019, 1, 7, 7, 2, 5, 0)));
        assert_eq!(d("2019-01-07"), Some(ms(2019, 1, 7, 0, 0, 0, 0)));
        assert_eq!(d("2019-01-07T07:21:58"), None);
        assert_eq!(d("2019-01-07 07:21"), None);
        assert_eq!(d("2019-01-07 25:00:00"), None);
        assert_eq!(d("19-01-07"), None);
        assert_eq!(d(""), None);
        let s = parse_sql_timestamp;
        assert_eq!(
            s(" 1999-9-10 05:20:10 "),
            Some(ms(1999, 9, 10, 5, 20, 10, 0))
        );
        assert_eq!(s("1999-9-10"), Some(ms(1999, 9, 10, 0, 0, 0, 0)));
        assert_eq!(s("1999-02-31"), Some(ms(1999, 3, 3, 0, 0, 0, 0)));
        assert_eq!(
            s("1999-09-10 05:20:10.5"),
            Some(ms(1999, 9, 10, 5, 20, 10, 500))
        );
        assert_eq!(s("1999-13-10"), None);
        assert_eq!(s("99-09-10"), None);
        assert_eq!(s("1999-09-10 05:20"), None);
        assert_eq!(s("1999-09-10 05:20:10."), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("Z", 0), Some((0, 1)));
        assert_eq!(parse_offset("+08", 0), Some((28_800, 3)));
        assert_eq!(parse_offset("+08:30", 0), Some((30_600, 6)));
        assert_eq!(parse_offset("-0830", 0), Some((-30_600, 5)));
        assert_eq!(parse_offset("UTC", 0), Some((0, 3)));
        assert_eq!(parse_offset("GMT-01:00", 0), Some((-3600, 9)));
        assert_eq!(parse_offset("x", 0), None);
        assert_eq!(parse_offset("+8", 0), None);
    }
}
