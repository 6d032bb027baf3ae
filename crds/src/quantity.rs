//! Byte sizes as Kubernetes writes them (`2Gi`, `512M`, `1e9`) and as the JVM writes them
//! (`-Xmx512m`, `-XX:MaxDirectMemorySize=2g`), so that a container's memory limit and its JVM's
//! heap and direct memory can be compared.

use std::fmt;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// One gibibyte.
pub const GIB: u64 = 1024 * MIB;

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a {what}: {why}")]
pub struct SizeError {
    input: String,
    what: &'static str,
    why: &'static str,
}

fn size_error(input: &str, what: &'static str, why: &'static str) -> SizeError {
    let mut shown: String = input.chars().take(40).collect();
    if input.chars().count() > 40 {
        shown.push('…');
    }
    SizeError {
        input: shown,
        what,
        why,
    }
}

const QUANTITY: &str = "Kubernetes quantity";

/// Reads a Kubernetes resource quantity (`128974848`, `129e6`, `129M`, `123Mi`, `0.5Gi`, `100m`)
/// as a number of base units, rounded up. The grammar is the API server's
/// (`apimachinery/pkg/api/resource`): a signed decimal number, then one of the binary suffixes
/// `Ki Mi Gi Ti Pi Ei`, the decimal suffixes `n u m k M G T P E` or an exponent `e<n>`/`E<n>`.
pub fn parse_quantity(input: &str) -> Result<f64, SizeError> {
    let s = input.trim();
    if s.is_empty() || s != input {
        return Err(size_error(
            input,
            QUANTITY,
            "expected a number such as 2Gi or 500m",
        ));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty()
        || number.len() - digits.len() > 1
        || digits.matches('.').count() > 1
        || digits == "."
        || digits.contains(['+', '-'])
    {
        return Err(size_error(
            input,
            QUANTITY,
            "expected a number such as 2Gi or 500m",
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| size_error(input, QUANTITY, "expected a number such as 2Gi or 500m"))?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..].parse().map_err(|_| {
                size_error(
                    input,
                    QUANTITY,
                    "the exponent after e must be a whole number",
                )
            })?;
            10f64.powi(power)
        }
        _ => {
            return Err(size_error(
                input,
                QUANTITY,
                "unknown suffix; use Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P or E",
            ));
        }
    };
    Ok(value * factor)
}

/// A Kubernetes memory quantity in bytes (rounded up; negative values are refused).
pub fn parse_memory(input: &str) -> Result<u64, SizeError> {
    let value = parse_quantity(input)?;
    if value < 0.0 {
        return Err(size_error(input, "memory size", "it is negative"));
    }
    if value > u64::MAX as f64 {
        return Err(size_error(input, "memory size", "it is too large"));
    }
    Ok(value.ceil() as u64)
}

/// Reads a JVM size (`512m`, `2g`, `1024k`, `4294967296`): a whole number of bytes, or of
/// kibibytes, mebibytes, gibibytes or tebibytes with `k`, `m`, `g`, `t` (either case), as
/// `-Xmx` and `-XX:MaxDirectMemorySize` take them.
pub fn parse_jvm_size(input: &str) -> Result<u64, SizeError> {
    const WHAT: &str = "JVM size";
    let (digits, factor) = match input.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let factor = match c.to_ascii_lowercase() {
                'k' => 1024,
                'm' => MIB,
                'g' => GIB,
                't' => 1024 * GIB,
                _ => return Err(size_error(input, WHAT, "use a suffix k, m, g or t")),
            };
            (&input[..i], factor)
        }
        _ => (input, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(size_error(
            input,
            WHAT,
            "expected a whole number such as 512m or 2g",
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| size_error(input, WHAT, "it is too large"))?;
    n.checked_mul(factor)
        .ok_or_else(|| size_error(input, WHAT, "it is too large"))
}

/// A byte count written for people: `512Mi`, `2Gi`, `1536Mi`, or bytes when not a whole MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b != 0 && b.is_multiple_of(GIB) {
            write!(f, "{}Gi", b / GIB)
        } else if b != 0 && b.is_multiple_of(MIB) {
            write!(f, "{}Mi", b / MIB)
        } else {
            write!(f, "{b} bytes")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities_read_as_the_api_server_reads_them() {
        for (q, bytes) in [
            ("128974848", 128_974_848u64),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 123 * MIB),
            ("0.5Gi", 512 * MIB),
            ("2Gi", 2 * GIB),
            ("1k", 1000),
            ("1Ki", 1024),
            ("+1Ki", 1024),
        ] {
            assert_eq!(parse_memory(q), Ok(bytes), "{q}");
        }
        assert_eq!(parse_quantity("500m"), Ok(0.5));
        for bad in [
            "banana", "", " 1Gi", "1GB", "1.2.3", "Gi", "--1", "1e", "1ex", "1 Gi", ".",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad:?}");
        }
        assert!(parse_memory("-1Gi").is_err());
        let e = parse_quantity("banana").unwrap_err().to_string();
        assert!(e.contains("\"banana\" is not a Kubernetes quantity"), "{e}");
    }

    #[test]
    fn jvm_sizes_read_as_the_jvm_reads_them() {
        assert_eq!(parse_jvm_size("512m"), Ok(512 * MIB));
        assert_eq!(parse_jvm_size("2G"), Ok(2 * GIB));
        assert_eq!(parse_jvm_size("1024k"), Ok(MIB));
        assert_eq!(parse_jvm_size("4096"), Ok(4096));
        for bad in ["", "m", "1.5g", "2x", "-1g", "1 g"] {
            assert!(parse_jvm_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_jvm_size("99999999999999999999t").is_err());
    }

    #[test]
    fn byte_counts_are_written_for_people() {
        assert_eq!(Bytes(2 * GIB).to_string(), "2Gi");
        assert_eq!(Bytes(1536 * MIB).to_string(), "1536Mi");
        assert_eq!(Bytes(1000).to_string(), "1000 bytes");
    }
}
