//! Classic BPF programs for `SO_ATTACH_FILTER`, read from the text that
//! `tcpdump -ddd` prints, so an operator can filter without libpcap.

use std::fmt;

/// The kernel's limit on classic BPF program length (`BPF_MAXINSNS`).
pub const BPF_MAX_INSNS: usize = 4096;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BpfInstruction {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Generic operand.
    pub k: u32,
}

/// A classic BPF program of 1 to [`BPF_MAX_INSNS`] instructions. The kernel
/// checks it again (and rejects unsafe jumps) when it is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProgram {
    insns: Vec<BpfInstruction>,
}

/// Why a BPF program was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BpfParseError {
    /// No instructions (the kernel refuses an empty program).
    Empty,
    /// More than [`BPF_MAX_INSNS`] instructions.
    TooLong(usize),
    /// The leading count does not match the instructions that follow.
    CountMismatch {
        /// The count the text starts with.
        declared: usize,
        /// The instructions found.
        found: usize,
    },
    /// A line is not four decimal numbers in range.
    BadInstruction {
        /// 1-based index of the record (the count is record 0).
        record: usize,
        /// The offending text.
        text: String,
    },
}

impl fmt::Display for BpfParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BpfParseError::Empty => write!(f, "empty BPF program"),
            BpfParseError::TooLong(n) => {
                write!(
                    f,
                    "BPF program has {n} instructions (limit {BPF_MAX_INSNS})"
                )
            }
            BpfParseError::CountMismatch { declared, found } => write!(
                f,
                "BPF program declares {declared} instructions but has {found}"
            ),
            BpfParseError::BadInstruction { record, text } => write!(
                f,
                "BPF instruction {record} is not `code jt jf k` in decimal: {text:?}"
            ),
        }
    }
}

impl std::error::Error for BpfParseError {}

impl From<BpfParseError> for std::io::Error {
    fn from(e: BpfParseError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

impl BpfProgram {
    /// A program from its instructions.
    pub fn from_instructions(insns: Vec<BpfInstruction>) -> Result<Self, BpfParseError> {
        if insns.is_empty() {
            return Err(BpfParseError::Empty);
        }
        if insns.len() > BPF_MAX_INSNS {
            return Err(BpfParseError::TooLong(insns.len()));
        }
        Ok(BpfProgram { insns })
    }

    /// Parses the output of `tcpdump -ddd EXPR`: a count, then one
    /// `code jt jf k` line per instruction, all decimal. Records may also be
    /// separated by commas (`tcpdump -ddd EXPR | tr '\n' ','`, the form
    /// iptables' `--bytecode` takes). Blank records are ignored.
    ///
    /// The program must be compiled for the interface's link type (`-y
    /// EN10MB` for Ethernet) and sees frames with the outer VLAN tag already
    /// removed by the kernel, as libpcap's own filters do.
    pub fn parse_tcpdump_ddd(text: &str) -> Result<Self, BpfParseError> {
        let mut records = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let first = records.next().ok_or(BpfParseError::Empty)?;
        let declared: usize = first.parse().map_err(|_| BpfParseError::BadInstruction {
            record: 0,
            text: first.to_owned(),
        })?;
        if declared > BPF_MAX_INSNS {
            return Err(BpfParseError::TooLong(declared));
        }
        let mut insns = Vec::with_capacity(declared);
        for (i, rec) in records.enumerate() {
            if insns.len() == BPF_MAX_INSNS {
                return Err(BpfParseError::TooLong(BPF_MAX_INSNS + 1));
            }
            let bad = || BpfParseError::BadInstruction {
                record: i + 1,
                text: rec.to_owned(),
            };
            let mut fields = rec.split_ascii_whitespace();
            let mut next = || fields.next().ok_or_else(bad);
            let insn = BpfInstruction {
                code: next()?.parse().map_err(|_| bad())?,
                jt: next()?.parse().map_err(|_| bad())?,
                jf: next()?.parse().map_err(|_| bad())?,
                k: next()?.parse().map_err(|_| bad())?,
            };
            if fields.next().is_some() {
                return Err(bad());
            }
            insns.push(insn);
        }
        if insns.len() != declared {
            return Err(BpfParseError::CountMismatch {
                declared,
                found: insns.len(),
            });
        }
        Self::from_instructions(insns)
    }

    /// The instructions, in order.
    pub fn instructions(&self) -> &[BpfInstruction] {
        &self.insns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tcpdump -ddd -y EN10MB udp` (tcpdump 4.99.3, libpcap 1.10.3).
    const UDP: &str = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 17\n21 0 6 34525\n\
                       48 0 0 20\n21 3 0 17\n21 0 3 44\n48 0 0 54\n21 0 1 17\n\
                       6 0 0 262144\n6 0 0 0\n";

    #[test]
    fn parses_tcpdump_ddd_lines_and_commas() {
        let p = BpfProgram::parse_tcpdump_ddd(UDP).expect("valid");
        assert_eq!(p.instructions().len(), 12);
        // 40 = BPF_LD|BPF_H|BPF_ABS (0x28): load the EtherType at offset 12.
        assert_eq!(
            p.instructions()[0],
            BpfInstruction {
                code: 0x28,
                jt: 0,
                jf: 0,
                k: 12
            }
        );
        let commas = UDP.replace('\n', ",");
        assert_eq!(BpfProgram::parse_tcpdump_ddd(&commas), Ok(p));
    }

    #[test]
    fn refuses_malformed_text() {
        assert_eq!(BpfProgram::parse_tcpdump_ddd(""), Err(BpfParseError::Empty));
        assert_eq!(
            BpfProgram::parse_tcpdump_ddd("0\n"),
            Err(BpfParseError::Empty)
        );
        assert_eq!(
            BpfProgram::parse_tcpdump_ddd("2\n6 0 0 0\n"),
            Err(BpfParseError::CountMismatch {
                declared: 2,
                found: 1
            })
        );
        for bad in [
            "1\n6 0 0\n",
            "1\n6 0 0 0 9\n",
            "1\n6 0 256 0\n",
            "1\n0x6 0 0 0\n",
            "x\n",
        ] {
            assert!(
                matches!(
                    BpfProgram::parse_tcpdump_ddd(bad),
                    Err(BpfParseError::BadInstruction { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            BpfProgram::parse_tcpdump_ddd("5000\n"),
            Err(BpfParseError::TooLong(5000))
        );
        let long = format!("1\n{}", "6 0 0 0\n".repeat(BPF_MAX_INSNS + 1));
        assert!(matches!(
            BpfProgram::parse_tcpdump_ddd(&long),
            Err(BpfParseError::TooLong(_))
        ));
    }
}
