//! Decoding the x86-64 instructions a PV guest kernel executes and the
//! hypervisor emulates, from raw bytes.
//!
//! A PV kernel runs in ring 3, so a privileged instruction (`mov %cr3`,
//! `wrmsr`, `in`, `hlt`, ...) faults with `#GP` instead of running, and
//! Xen's *forced-emulation prefix* (`ud2; .ascii "xen"`) turns the `cpuid`
//! after it into a `#UD`. The trap handler then fetches the bytes at the
//! faulting RIP (at most 15, through the guest's page tables) and asks this
//! module what they are. It decodes exactly what the emulator needs: the
//! instruction's length (so RIP can be advanced past it), which operation it
//! is, and its register operands. Anything else is [`DecodeError::NotEmulated`]
//! and the guest gets its fault back.
//!
//! An instruction, as the processor reads it in 64-bit mode:
//!
//! ```text
//!   [legacy prefixes] [REX] [0F [01]] opcode [ModRM [SIB] [displacement]] [immediate]
//!    66 67 F2 F3 F0    40-4F              mod|reg|r/m  scale|index|base
//!    2E 36 3E 26 64 65      W R X B        2   3   3     2     3     3
//! ```
//!
//! - legacy prefixes: operand size (66), address size (67), repeat (F3, F2),
//!   lock (F0), segment overrides; any number, in any order;
//! - REX (40..4F) only counts when it comes last, right before the opcode:
//!   a REX followed by a legacy prefix is ignored, as the processor does;
//!   REX.R extends ModRM.reg, REX.B extends ModRM.r/m (and SIB.base),
//!   REX.X extends SIB.index, REX.W makes the operand 64 bits;
//! - ModRM: `mod = 11` names a register in r/m; otherwise r/m names memory,
//!   with a SIB byte when r/m = 100, a 32-bit displacement for `mod = 00,
//!   r/m = 101` (RIP-relative) or `mod = 10`, an 8-bit one for `mod = 01`,
//!   and for a SIB with `base = 101` and `mod = 00` a 32-bit displacement
//!   instead of the base register;
//! - `mov` to and from control and debug registers (`0F 20..23`) always use
//!   a register operand in 64-bit mode: the processor ignores the mod bits.
//!
//! The whole instruction, prefixes included, may not exceed 15 bytes (the
//! processor raises `#GP` for a longer one). The bytes handed in may be
//! fewer than 15 when the instruction ends near an unmapped page: decoding
//! succeeds when the instruction fits in them, and otherwise reports
//! [`DecodeError::Truncated`] with the offset of the first missing byte, which
//! the caller turns into the page fault the processor would have raised.

/// The longest instruction the processor accepts.
pub const MAX_INSTRUCTION_LENGTH: usize = 15;

/// Xen's forced-emulation prefix: `ud2` followed by the ASCII bytes "xen".
/// A PV kernel puts it before `cpuid` to get the hypervisor's filtered view
/// of the CPU instead of the hardware's.
pub const FORCED_EMULATION_PREFIX: [u8; 5] = [0x0f, 0x0b, b'x', b'e', b'n'];

/// A general-purpose register number as ModRM encodes it, extended by REX:
/// 0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, 5 = rbp, 6 = rsi, 7 = rdi,
/// 8..15 = r8..r15.
pub type Register = u8;

/// Where an `in` or `out` instruction takes its port number from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// An 8-bit immediate in the instruction (`in $0x60, %al`).
    Immediate(u8),
    /// The `dx` register (`in %dx, %al`).
    Dx,
}

/// A descriptor-table or machine-status instruction of the `0F 00` and
/// `0F 01` groups. None of them is emulated; they are decoded so that the
/// log can say what the guest tried. In ring 3 most of them do *not* fault
/// (`sgdt`, `sidt`, `sldt`, `smsw`, `str` just reveal the real values,
/// unless the CPU has UMIP), which is why x86 was not classically
/// virtualizable (see `docs/trap-and-emulate.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemTable {
    Sldt,
    Str,
    Lldt,
    Ltr,
    Verr,
    Verw,
    Sgdt,
    Sidt,
    Lgdt,
    Lidt,
    Smsw,
    Lmsw,
    Invlpg,
}

/// What a decoded instruction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `mov %crN, %reg` (0F 20).
    ReadControlRegister { control: u8, register: Register },
    /// `mov %reg, %crN` (0F 22).
    WriteControlRegister { control: u8, register: Register },
    /// `mov %drN, %reg` (0F 21).
    ReadDebugRegister { debug: u8, register: Register },
    /// `mov %reg, %drN` (0F 23).
    WriteDebugRegister { debug: u8, register: Register },
    /// `clts` (0F 06): clear CR0.TS.
    Clts,
    /// `invd` (0F 08).
    Invd,
    /// `wbinvd` (0F 09).
    Wbinvd,
    /// `wrmsr` (0F 30): MSR `ecx` = `edx:eax`.
    Wrmsr,
    /// `rdtsc` (0F 31).
    Rdtsc,
    /// `rdmsr` (0F 32): `edx:eax` = MSR `ecx`.
    Rdmsr,
    /// `rdpmc` (0F 33).
    Rdpmc,
    /// `cpuid` (0F A2).
    Cpuid,
    /// `rdtscp` (0F 01 F9).
    Rdtscp,
    /// `xsetbv` (0F 01 D1).
    Xsetbv,
    /// `swapgs` (0F 01 F8).
    Swapgs,
    /// A descriptor-table instruction (0F 00 /n, 0F 01 /n with a memory or
    /// register operand).
    SystemTable(SystemTable),
    /// `in` (E4, E5, EC, ED): `size` bytes from `port` into al/ax/eax.
    In { size: u8, port: Port },
    /// `out` (E6, E7, EE, EF).
    Out { size: u8, port: Port },
    /// `ins` (6C, 6D), possibly with `rep`.
    InString { size: u8 },
    /// `outs` (6E, 6F), possibly with `rep`.
    OutString { size: u8 },
    /// `hlt` (F4).
    Hlt,
    /// `cli` (FA).
    Cli,
    /// `sti` (FB).
    Sti,
}

/// The prefixes in front of the opcode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefixes {
    /// 66: 16-bit operands.
    pub operand_size: bool,
    /// 67: 32-bit addresses.
    pub address_size: bool,
    /// F3 (`rep`/`repe`).
    pub rep: bool,
    /// F2 (`repne`).
    pub repne: bool,
    /// F0 (`lock`).
    pub lock: bool,
    /// The last segment override (2E, 36, 3E, 26, 64, 65), if any.
    pub segment: Option<u8>,
    /// The REX byte that counts (0 when there is none).
    pub rex: u8,
}

impl Prefixes {
    fn rex_r(&self) -> u8 {
        (self.rex >> 2) & 1
    }
    fn rex_b(&self) -> u8 {
        self.rex & 1
    }
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Its length in bytes, prefixes included (what RIP advances by).
    pub length: usize,
    /// Its prefixes.
    pub prefixes: Prefixes,
    /// What it does.
    pub operation: Operation,
}

/// Why some bytes are not an instruction the emulator can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The instruction goes on past the bytes given: byte `missing_at`
    /// (counted from the first) was not available. When the bytes stopped
    /// at an unmapped page, the processor would have taken a page fault
    /// there.
    Truncated { missing_at: usize },
    /// More than 15 bytes: the processor raises `#GP`.
    TooLong,
    /// A valid encoding is invalid here (such as `lock` on `mov %cr0`, or a
    /// debug register above 7): the processor raises `#UD`.
    Undefined,
    /// Not one of the instructions this emulator decodes; the guest gets
    /// its original fault back.
    NotEmulated,
}

/// Reads bytes one by one, checking the 15-byte limit and the end of what
/// was fetched.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Result<u8, DecodeError> {
        if self.position >= MAX_INSTRUCTION_LENGTH {
            return Err(DecodeError::TooLong);
        }
        let byte = *self
            .bytes
            .get(self.position)
            .ok_or(DecodeError::Truncated {
                missing_at: self.position,
            })?;
        self.position += 1;
        Ok(byte)
    }

    fn skip(&mut self, count: usize) -> Result<(), DecodeError> {
        for _ in 0..count {
            self.next()?;
        }
        Ok(())
    }
}

/// The three fields of a ModRM byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModRm {
    /// Bits 7..6: 11 = register operand, else a memory form.
    pub mode: u8,
    /// Bits 5..3: a register, or an opcode extension (`/n`).
    pub reg: u8,
    /// Bits 2..0: a register (mode 11) or the base of the address.
    pub rm: u8,
}

impl ModRm {
    /// Splits a ModRM byte.
    pub fn from_byte(byte: u8) -> Self {
        Self {
            mode: byte >> 6,
            reg: (byte >> 3) & 7,
            rm: byte & 7,
        }
    }
}

/// Skips what follows a ModRM byte in a memory form: the SIB byte and the
/// displacement (64-bit mode; with a 67 prefix the forms are the same,
/// 32-bit registers instead of 64-bit ones).
fn skip_memory_operand(cursor: &mut Cursor, modrm: ModRm) -> Result<(), DecodeError> {
    if modrm.mode == 3 {
        return Ok(());
    }
    let mut displacement = match modrm.mode {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if modrm.rm == 4 {
        let sib = cursor.next()?;
        // SIB base 101 with mod 00: a disp32 and no base register.
        if sib & 7 == 5 && modrm.mode == 0 {
            displacement = 4;
        }
    } else if modrm.rm == 5 && modrm.mode == 0 {
        displacement = 4; // RIP-relative
    }
    cursor.skip(displacement)
}

/// Reads the legacy prefixes and the REX byte that counts.
fn read_prefixes(cursor: &mut Cursor) -> Result<(Prefixes, u8), DecodeError> {
    let mut prefixes = Prefixes::default();
    loop {
        let byte = cursor.next()?;
        match byte {
            0x66 => prefixes.operand_size = true,
            0x67 => prefixes.address_size = true,
            0xf3 => {
                prefixes.rep = true;
                prefixes.repne = false;
            }
            0xf2 => {
                prefixes.repne = true;
                prefixes.rep = false;
            }
            0xf0 => prefixes.lock = true,
            0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 => prefixes.segment = Some(byte),
            0x40..=0x4f => {
                // A REX counts only directly before the opcode; one followed
                // by a legacy prefix is ignored (the loop overwrites it).
                prefixes.rex = byte;
                let opcode = cursor.next()?;
                if is_legacy_prefix(opcode) || (0x40..=0x4f).contains(&opcode) {
                    cursor.position -= 1;
                    prefixes.rex = 0;
                    continue;
                }
                return Ok((prefixes, opcode));
            }
            _ => return Ok((prefixes, byte)),
        }
    }
}

fn is_legacy_prefix(byte: u8) -> bool {
    matches!(
        byte,
        0x66 | 0x67 | 0xf3 | 0xf2 | 0xf0 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65
    )
}

/// Decodes the instruction at the start of `bytes` (what could be fetched
/// at the faulting RIP, at most 15 bytes or up to an unmapped page).
pub fn decode(bytes: &[u8]) -> Result<Instruction, DecodeError> {
    let mut cursor = Cursor { bytes, position: 0 };
    let (prefixes, opcode) = read_prefixes(&mut cursor)?;
    let operation = match opcode {
        0x0f => decode_two_byte(&mut cursor, &prefixes)?,
        0xe4..=0xe7 | 0xec..=0xef => {
            let size = if opcode & 1 == 0 {
                1
            } else if prefixes.operand_size {
                2
            } else {
                4
            };
            let port = if opcode & 0x08 == 0 {
                Port::Immediate(cursor.next()?)
            } else {
                Port::Dx
            };
            if opcode & 2 == 0 {
                Operation::In { size, port }
            } else {
                Operation::Out { size, port }
            }
        }
        0x6c..=0x6f => {
            let size = if opcode & 1 == 0 {
                1
            } else if prefixes.operand_size {
                2
            } else {
                4
            };
            if opcode & 2 == 0 {
                Operation::InString { size }
            } else {
                Operation::OutString { size }
            }
        }
        0xf4 => Operation::Hlt,
        0xfa => Operation::Cli,
        0xfb => Operation::Sti,
        _ => return Err(DecodeError::NotEmulated),
    };
    if prefixes.lock {
        // `lock` is only allowed on read-modify-write memory instructions;
        // none of these is one (AMD's `lock mov %cr0` alias of CR8 aside,
        // which this emulator does not offer).
        return Err(DecodeError::Undefined);
    }
    Ok(Instruction {
        length: cursor.position,
        prefixes,
        operation,
    })
}

/// The opcodes after `0F`.
fn decode_two_byte(cursor: &mut Cursor, prefixes: &Prefixes) -> Result<Operation, DecodeError> {
    let opcode = cursor.next()?;
    Ok(match opcode {
        0x00 => {
            let modrm = ModRm::from_byte(cursor.next()?);
            skip_memory_operand(cursor, modrm)?;
            Operation::SystemTable(match modrm.reg {
                0 => SystemTable::Sldt,
                1 => SystemTable::Str,
                2 => SystemTable::Lldt,
                3 => SystemTable::Ltr,
                4 => SystemTable::Verr,
                5 => SystemTable::Verw,
                _ => return Err(DecodeError::NotEmulated),
            })
        }
        0x01 => {
            let byte = cursor.next()?;
            let modrm = ModRm::from_byte(byte);
            if modrm.mode == 3 {
                // The register forms of group 7 are separate instructions.
                match byte {
                    0xd1 => return Ok(Operation::Xsetbv),
                    0xf8 => return Ok(Operation::Swapgs),
                    0xf9 => return Ok(Operation::Rdtscp),
                    _ if modrm.reg == 4 => return Ok(Operation::SystemTable(SystemTable::Smsw)),
                    _ if modrm.reg == 6 => return Ok(Operation::SystemTable(SystemTable::Lmsw)),
                    _ => return Err(DecodeError::NotEmulated),
                }
            }
            skip_memory_operand(cursor, modrm)?;
            Operation::SystemTable(match modrm.reg {
                0 => SystemTable::Sgdt,
                1 => SystemTable::Sidt,
                2 => SystemTable::Lgdt,
                3 => SystemTable::Lidt,
                4 => SystemTable::Smsw,
                6 => SystemTable::Lmsw,
                7 => SystemTable::Invlpg,
                _ => return Err(DecodeError::NotEmulated),
            })
        }
        0x06 => Operation::Clts,
        0x08 => Operation::Invd,
        0x09 => Operation::Wbinvd,
        0x20..=0x23 => {
            // The mod bits are ignored: the operand is always a register.
            let modrm = ModRm::from_byte(cursor.next()?);
            let special = modrm.reg | (prefixes.rex_r() << 3);
            let register = modrm.rm | (prefixes.rex_b() << 3);
            match opcode {
                0x20 | 0x22 => {
                    // CR0, CR2, CR3, CR4 and (with REX.R) CR8 exist.
                    if !matches!(special, 0 | 2 | 3 | 4 | 8) {
                        return Err(DecodeError::Undefined);
                    }
                    if opcode == 0x20 {
                        Operation::ReadControlRegister {
                            control: special,
                            register,
                        }
                    } else {
                        Operation::WriteControlRegister {
                            control: special,
                            register,
                        }
                    }
                }
                _ => {
                    // DR0..DR7 only: REX.R names no debug register.
                    if special > 7 {
                        return Err(DecodeError::Undefined);
                    }
                    if opcode == 0x21 {
                        Operation::ReadDebugRegister {
                            debug: special,
                            register,
                        }
                    } else {
                        Operation::WriteDebugRegister {
                            debug: special,
                            register,
                        }
                    }
                }
            }
        }
        0x30 => Operation::Wrmsr,
        0x31 => Operation::Rdtsc,
        0x32 => Operation::Rdmsr,
        0x33 => Operation::Rdpmc,
        0xa2 => Operation::Cpuid,
        _ => return Err(DecodeError::NotEmulated),
    })
}

/// What the bytes at a `#UD` say about forced emulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedEmulation {
    /// The prefix, then `cpuid`: emulate it; the whole sequence is
    /// `length` bytes long.
    Cpuid { length: usize },
    /// Not the prefix: an ordinary `#UD`, the guest's.
    NotForced,
    /// The prefix followed by something other than `cpuid`: Xen emulates
    /// nothing else after it, so the guest gets its `#UD`.
    OtherInstruction,
    /// The bytes stop (at an unmapped page) while they still match the
    /// prefix or the `cpuid` after it: byte `missing_at` could not be read,
    /// and the guest gets the page fault the fetch took.
    Truncated { missing_at: usize },
}

/// Looks for Xen's forced-emulation prefix followed by `cpuid` at the
/// start of `bytes`. As in Xen, only `cpuid` is emulated after the prefix,
/// and with no prefixes of its own.
pub fn forced_emulation(bytes: &[u8]) -> ForcedEmulation {
    const CPUID: [u8; 2] = [0x0f, 0xa2];
    let expected = FORCED_EMULATION_PREFIX.iter().chain(CPUID.iter());
    for (index, &want) in expected.enumerate() {
        match bytes.get(index) {
            None => return ForcedEmulation::Truncated { missing_at: index },
            Some(&got) if got != want => {
                return if index < FORCED_EMULATION_PREFIX.len() {
                    ForcedEmulation::NotForced
                } else {
                    ForcedEmulation::OtherInstruction
                };
            }
            Some(_) => {}
        }
    }
    ForcedEmulation::Cpuid {
        length: FORCED_EMULATION_PREFIX.len() + CPUID.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(bytes: &[u8]) -> Operation {
        decode(bytes).expect("decodes").operation
    }

    fn length(bytes: &[u8]) -> usize {
        decode(bytes).expect("decodes").length
    }

    #[test]
    fn control_register_moves() {
        // mov %cr3, %rax
        assert_eq!(
            operation(&[0x0f, 0x20, 0xd8]),
            Operation::ReadControlRegister {
                control: 3,
                register: 0
            }
        );
        // mov %rbx, %cr4  (ModRM 11 100 011)
        assert_eq!(
            operation(&[0x0f, 0x22, 0xe3]),
            Operation::WriteControlRegister {
                control: 4,
                register: 3
            }
        );
        // mov %cr0, %r9: REX.B extends r/m
        assert_eq!(
            operation(&[0x41, 0x0f, 0x20, 0xc1]),
            Operation::ReadControlRegister {
                control: 0,
                register: 9
            }
        );
        // mov %cr8, %rax: REX.R extends reg
        assert_eq!(
            operation(&[0x44, 0x0f, 0x20, 0xc0]),
            Operation::ReadControlRegister {
                control: 8,
                register: 0
            }
        );
    }

    #[test]
    fn control_register_moves_ignore_the_mod_bits() {
        // mod 00 would be a memory form elsewhere; here it is still a
        // register and no displacement follows.
        let instruction = decode(&[0x0f, 0x20, 0x18, 0x90]).unwrap();
        assert_eq!(instruction.length, 3);
        assert_eq!(
            instruction.operation,
            Operation::ReadControlRegister {
                control: 3,
                register: 0
            }
        );
    }

    #[test]
    fn control_registers_that_do_not_exist_are_undefined() {
        // mov %cr1, %rax and mov %cr5, %rax
        assert_eq!(decode(&[0x0f, 0x20, 0xc8]), Err(DecodeError::Undefined));
        assert_eq!(decode(&[0x0f, 0x20, 0xe8]), Err(DecodeError::Undefined));
        // lock mov %cr0, %rax
        assert_eq!(
            decode(&[0xf0, 0x0f, 0x20, 0xc0]),
            Err(DecodeError::Undefined)
        );
    }

    #[test]
    fn debug_register_moves() {
        // mov %dr7, %rdx
        assert_eq!(
            operation(&[0x0f, 0x21, 0xfa]),
            Operation::ReadDebugRegister {
                debug: 7,
                register: 2
            }
        );
        // mov %r15, %dr0
        assert_eq!(
            operation(&[0x41, 0x0f, 0x23, 0xc7]),
            Operation::WriteDebugRegister {
                debug: 0,
                register: 15
            }
        );
        // REX.R would name DR8: undefined.
        assert_eq!(
            decode(&[0x44, 0x0f, 0x21, 0xc0]),
            Err(DecodeError::Undefined)
        );
    }

    #[test]
    fn simple_two_byte_instructions() {
        assert_eq!(operation(&[0x0f, 0x32]), Operation::Rdmsr);
        assert_eq!(operation(&[0x0f, 0x30]), Operation::Wrmsr);
        assert_eq!(operation(&[0x0f, 0xa2]), Operation::Cpuid);
        assert_eq!(operation(&[0x0f, 0x31]), Operation::Rdtsc);
        assert_eq!(operation(&[0x0f, 0x01, 0xf9]), Operation::Rdtscp);
        assert_eq!(operation(&[0x0f, 0x09]), Operation::Wbinvd);
        assert_eq!(operation(&[0x0f, 0x06]), Operation::Clts);
        assert_eq!(operation(&[0x0f, 0x01, 0xd1]), Operation::Xsetbv);
        assert_eq!(length(&[0x0f, 0x01, 0xf9, 0xcc]), 3);
    }

    #[test]
    fn one_byte_instructions() {
        assert_eq!(operation(&[0xf4]), Operation::Hlt);
        assert_eq!(operation(&[0xfa]), Operation::Cli);
        assert_eq!(operation(&[0xfb]), Operation::Sti);
    }

    #[test]
    fn port_io_forms() {
        assert_eq!(
            decode(&[0xe4, 0x60]).unwrap(),
            Instruction {
                length: 2,
                prefixes: Prefixes::default(),
                operation: Operation::In {
                    size: 1,
                    port: Port::Immediate(0x60)
                }
            }
        );
        assert_eq!(
            operation(&[0xef]),
            Operation::Out {
                size: 4,
                port: Port::Dx
            }
        );
        assert_eq!(
            operation(&[0x66, 0xed]),
            Operation::In {
                size: 2,
                port: Port::Dx
            }
        );
        // rep outsb
        let instruction = decode(&[0xf3, 0x6e]).unwrap();
        assert!(instruction.prefixes.rep);
        assert_eq!(instruction.operation, Operation::OutString { size: 1 });
        assert_eq!(operation(&[0x6d]), Operation::InString { size: 4 });
    }

    #[test]
    fn legacy_prefixes_are_counted_in_the_length() {
        // cs, ds, address size and operand size in front of rdmsr
        let instruction = decode(&[0x2e, 0x3e, 0x67, 0x66, 0x0f, 0x32]).unwrap();
        assert_eq!(instruction.length, 6);
        assert_eq!(instruction.prefixes.segment, Some(0x3e));
        assert!(instruction.prefixes.address_size && instruction.prefixes.operand_size);
    }

    #[test]
    fn a_rex_before_a_legacy_prefix_is_ignored() {
        // 41 (REX.B) then 66: the REX does not count, so r/m 1 is rcx.
        let instruction = decode(&[0x41, 0x66, 0x0f, 0x20, 0xc1]).unwrap();
        assert_eq!(instruction.prefixes.rex, 0);
        assert_eq!(
            instruction.operation,
            Operation::ReadControlRegister {
                control: 0,
                register: 1
            }
        );
        // Two REX bytes: only the last counts.
        let instruction = decode(&[0x44, 0x41, 0x0f, 0x20, 0xc1]).unwrap();
        assert_eq!(instruction.prefixes.rex, 0x41);
        assert_eq!(instruction.length, 5);
    }

    #[test]
    fn more_than_fifteen_bytes_is_too_long() {
        let mut bytes = [0x66u8; 16];
        bytes[14] = 0x0f;
        bytes[15] = 0x32;
        assert_eq!(decode(&bytes), Err(DecodeError::TooLong));
        // Exactly 15 bytes is fine.
        let mut bytes = [0x66u8; 15];
        bytes[13] = 0x0f;
        bytes[14] = 0x32;
        assert_eq!(length(&bytes), 15);
    }

    #[test]
    fn modrm_memory_forms_have_the_right_length() {
        // sgdt (%rax): 0F 01 00
        assert_eq!(length(&[0x0f, 0x01, 0x00]), 3);
        // sidt 0x12(%rbx): mod 01, disp8
        assert_eq!(length(&[0x0f, 0x01, 0x4b, 0x12]), 4);
        // sgdt 0x12345678(%rcx): mod 10, disp32
        assert_eq!(length(&[0x0f, 0x01, 0x81, 1, 2, 3, 4]), 7);
        // sgdt 0x10(%rip): mod 00 r/m 101, disp32
        assert_eq!(length(&[0x0f, 0x01, 0x05, 1, 2, 3, 4]), 7);
        // sgdt (%rsp): SIB, no displacement
        assert_eq!(length(&[0x0f, 0x01, 0x04, 0x24]), 4);
        // sgdt 0x0(,%rax,8): SIB base 101 with mod 00: disp32
        assert_eq!(length(&[0x0f, 0x01, 0x04, 0xc5, 0, 0, 0, 0]), 8);
        // sgdt 0x8(%rbp,%rcx,2): SIB base 101 with mod 01: disp8
        assert_eq!(length(&[0x0f, 0x01, 0x44, 0x4d, 0x08]), 5);
        // str %eax (0F 00 /1, register form)
        assert_eq!(
            operation(&[0x0f, 0x00, 0xc8]),
            Operation::SystemTable(SystemTable::Str)
        );
        // smsw %eax (0F 01 /4, register form)
        assert_eq!(
            operation(&[0x0f, 0x01, 0xe0]),
            Operation::SystemTable(SystemTable::Smsw)
        );
        assert_eq!(
            operation(&[0x0f, 0x01, 0x08]),
            Operation::SystemTable(SystemTable::Sidt)
        );
    }

    #[test]
    fn instructions_cut_short_say_where() {
        // rdmsr with its second byte on an unmapped page
        assert_eq!(
            decode(&[0x0f]),
            Err(DecodeError::Truncated { missing_at: 1 })
        );
        // in $imm8 with the immediate missing
        assert_eq!(
            decode(&[0xe4]),
            Err(DecodeError::Truncated { missing_at: 1 })
        );
        // sgdt with half its displacement
        assert_eq!(
            decode(&[0x0f, 0x01, 0x81, 1, 2]),
            Err(DecodeError::Truncated { missing_at: 5 })
        );
        // prefixes only
        assert_eq!(
            decode(&[0x66, 0x41]),
            Err(DecodeError::Truncated { missing_at: 2 })
        );
        assert_eq!(decode(&[]), Err(DecodeError::Truncated { missing_at: 0 }));
    }

    #[test]
    fn an_instruction_that_fits_before_the_page_end_decodes() {
        // The fetch stopped after 3 bytes (the next page is unmapped), and
        // the instruction is 3 bytes long: nothing is missing.
        assert_eq!(length(&[0x0f, 0x20, 0xd8]), 3);
    }

    #[test]
    fn everything_else_is_not_emulated() {
        assert_eq!(decode(&[0x90]), Err(DecodeError::NotEmulated)); // nop
        assert_eq!(decode(&[0xcd, 0x80]), Err(DecodeError::NotEmulated)); // int $0x80
        assert_eq!(decode(&[0x0f, 0x0b]), Err(DecodeError::NotEmulated)); // ud2
        assert_eq!(decode(&[0x0f, 0x05]), Err(DecodeError::NotEmulated)); // syscall
    }

    #[test]
    fn forced_emulation_of_cpuid() {
        let bytes = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2, 0x90];
        assert_eq!(
            forced_emulation(&bytes),
            ForcedEmulation::Cpuid { length: 7 }
        );
        // A plain ud2.
        assert_eq!(
            forced_emulation(&[0x0f, 0x0b, 0x90, 0x90, 0x90, 0x90, 0x90]),
            ForcedEmulation::NotForced
        );
        // The prefix followed by garbage or by another instruction.
        assert_eq!(
            forced_emulation(&[0x0f, 0x0b, b'x', b'e', b'n', 0xff, 0xff]),
            ForcedEmulation::OtherInstruction
        );
        assert_eq!(
            forced_emulation(&[0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0x32]),
            ForcedEmulation::OtherInstruction
        );
    }

    #[test]
    fn forced_emulation_cut_by_a_page_end() {
        // "ud2; x" then an unmapped page.
        assert_eq!(
            forced_emulation(&[0x0f, 0x0b, b'x']),
            ForcedEmulation::Truncated { missing_at: 3 }
        );
        // The whole prefix, then the cpuid bytes are unmapped.
        assert_eq!(
            forced_emulation(&FORCED_EMULATION_PREFIX),
            ForcedEmulation::Truncated { missing_at: 5 }
        );
        // A ud2 that is not the prefix is an ordinary #UD even at a page end.
        assert_eq!(
            forced_emulation(&[0x0f, 0x0b, b'y']),
            ForcedEmulation::NotForced
        );
    }
}
