//! TAP offload: reading the kernel's large TCP/UDP segments (TSO/USO through `IFF_VNET_HDR`) and cutting
//! them into wire-size Ethernet frames in user space, around the crypto.
//!
//! Without offload every frame costs one `read` on the TAP device; with it, the kernel hands over up to
//! 64 KiB of one TCP stream in one read, preceded by a virtio-net header that says how to cut it
//! (`gso_type`, `gso_size`) and where a checksum is still to be completed (`csum_start`, `csum_offset`).
//! We do here what a NIC would: split the payload, give each segment its headers (IPv4 length, id and
//! header checksum; IPv6 payload length; TCP sequence number and flags; UDP length) and compute its
//! checksum. Frames written to the TAP carry a virtio-net header marking their checksums as already
//! verified (they were, end to end, by the AEAD).
//!
//! tun-rs's own batch helpers assume TUN (an IP header right after the virtio header) and fail on TAP,
//! whose frames start with an Ethernet header, so this module handles the Ethernet framing itself.

use std::ops::Range;

/// Length of the virtio-net header the kernel puts before every frame (no `num_buffers` field).
pub const VNET_HDR_LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
/// Written on frames we hand to the kernel: checksums need no check.
pub const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;

// The header views everything below reads and writes frames through (no raw offsets here).
use weft_proto::wire::packet::ethernet::{self, EthernetFrame, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use weft_proto::wire::packet::tcp::{self, TcpPacket, FLAG_ACK, FLAG_CWR, FLAG_FIN, FLAG_PSH};
use weft_proto::wire::packet::{ipv4, ipv6, udp, Ipv4Packet, Ipv6Packet, PacketError, UdpPacket};
use weft_proto::wire::packet::{IPPROTO_TCP, IPPROTO_UDP};

/// Why a frame from the TAP could not be split (it is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// Shorter than its headers say.
    #[error("truncated frame")]
    Truncated,
    /// A GSO type or header layout we do not segment.
    #[error("unsupported segmentation offload")]
    Unsupported,
}

/// The virtio-net header, as the tun driver uses it (little-endian on the hosts we build for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// The header's bytes.
    fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = self.flags;
        h[1] = self.gso_type;
        h[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        h[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        h[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        h[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        h
    }

    /// The header for a frame we write: no segmentation, checksum already valid.
    pub fn data_valid() -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = F_DATA_VALID;
        h
    }
}

/// Sum of big-endian 16-bit words, added to `acc` (not folded), in the ones' complement arithmetic of the
/// Internet checksum (RFC 1071).
///
/// Every segment's checksum covers its whole payload, so this runs over every byte sent: eight bytes per
/// step with end-around carry instead of two (RFC 1071 section 2: the sum may be taken in native byte
/// order and in wider words, then folded and swapped once).
fn sum16(data: &[u8], acc: u32) -> u32 {
    let mut wide: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let (sum, carry) = wide.overflowing_add(u64::from_ne_bytes(c.try_into().expect("8 bytes")));
        wide = sum + carry as u64;
    }
    let mut folded = (wide >> 32) + (wide & 0xffff_ffff);
    while folded > 0xffff {
        folded = (folded >> 16) + (folded & 0xffff);
    }
    // A sum of native-order words is the byte swap of the sum of big-endian words.
    let mut acc = acc + u16::from_be_bytes((folded as u16).to_ne_bytes()) as u32;
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for c in &mut pairs {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = pairs.remainder() {
        acc += (*last as u32) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Completes a partial checksum (NEEDS_CSUM without segmentation): the kernel left the pseudo-header sum
/// in the checksum field; sum from `start` to the end and store the result there.
fn complete_checksum(frame: &mut [u8], start: usize, offset: usize) -> Result<(), OffloadError> {
    let at = start + offset;
    if at + 2 > frame.len() || start > frame.len() {
        return Err(OffloadError::Truncated);
    }
    let c = fold(sum16(&frame[start..], 0));
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Splits one read from a TAP device with a virtio-net header into Ethernet frames ready for the wire,
/// calling `each(head, tail)` with every frame in order: the frame is `head` followed by `tail`. A frame
/// the kernel did not segment comes whole as `head`; a segment comes as its rebuilt headers (built in
/// `scratch`, reused between calls) and its slice of the large payload, so that the payload is not copied
/// here: the protocol core copies it once, into the datagram it seals.
pub fn split(
    buf: &mut [u8],
    scratch: &mut Vec<u8>,
    mut each: impl FnMut(&[u8], &[u8]),
) -> Result<(), OffloadError> {
    let hdr = VnetHdr::parse(buf).ok_or(OffloadError::Truncated)?;
    let frame = &mut buf[VNET_HDR_LEN..];
    let gso = hdr.gso_type & 0x7f;
    if gso == GSO_NONE {
        if hdr.flags & F_NEEDS_CSUM != 0 {
            complete_checksum(frame, hdr.csum_start as usize, hdr.csum_offset as usize)?;
        }
        each(frame, &[]);
        return Ok(());
    }
    let (l3, ethertype) = EthernetFrame::new_checked(&*frame)
        .and_then(|eth| eth.network_header())
        .map_err(|_| OffloadError::Truncated)?;
    let l4 = hdr.csum_start as usize;
    let v4 = match (gso, ethertype) {
        (GSO_TCPV4, ETHERTYPE_IPV4) | (GSO_UDP_L4, ETHERTYPE_IPV4) => true,
        (GSO_TCPV6, ETHERTYPE_IPV6) | (GSO_UDP_L4, ETHERTYPE_IPV6) => false,
        _ => return Err(OffloadError::Unsupported),
    };
    // The IP header, checked once here: the segments' copies of it are rewritten unchecked below.
    let id0 = if v4 {
        let ip = Ipv4Packet::new_checked(&frame[l3..]).map_err(|e| match e {
            PacketError::Truncated => OffloadError::Truncated,
            PacketError::Malformed => OffloadError::Unsupported,
        })?;
        if l4 != l3 + ip.header_len() {
            return Err(OffloadError::Unsupported);
        }
        ip.ident()
    } else {
        if l4 != l3 + ipv6::HEADER_LEN {
            return Err(OffloadError::Unsupported); // extension headers: not produced by TSO here
        }
        0
    };
    let tcp = gso != GSO_UDP_L4;
    let transport = frame.get(l4..).ok_or(OffloadError::Truncated)?;
    let (l4_len, seq0) = if tcp {
        let t = TcpPacket::new_checked(transport).map_err(|_| OffloadError::Truncated)?;
        (t.header_len(), t.seq_number())
    } else {
        UdpPacket::new_checked(transport).map_err(|_| OffloadError::Truncated)?;
        (udp::HEADER_LEN, 0)
    };
    let payload_at = l4 + l4_len;
    if payload_at & 1 == 1 {
        // The checksum below sums headers and payload separately, which needs the payload to start on
        // an even offset; Ethernet, VLAN, IP and TCP/UDP header lengths always give one.
        return Err(OffloadError::Unsupported);
    }
    let mss = hdr.gso_size as usize;
    if mss == 0 {
        return Err(OffloadError::Unsupported);
    }
    let payload_len = frame.len() - payload_at;
    let segments = payload_len.div_ceil(mss).max(1);
    let proto = if tcp { IPPROTO_TCP } else { IPPROTO_UDP } as u32;
    for i in 0..segments {
        let from = payload_at + i * mss;
        let to = (from + mss).min(frame.len());
        let last = i + 1 == segments;
        scratch.clear();
        scratch.extend_from_slice(&frame[..payload_at]);
        let payload = &frame[from..to];
        let seg_len = payload_at + payload.len();
        let seg_l4_len = seg_len - l4;
        let (net, transport) = scratch.split_at_mut(l4);
        let net = &mut net[l3..];
        // Network layer; then the pseudo-header sum, from the addresses.
        let pseudo = if v4 {
            let mut ip = Ipv4Packet::new_unchecked(net);
            ip.set_total_len((seg_len - l3) as u16);
            ip.set_ident(id0.wrapping_add(i as u16));
            ip.set_checksum(0);
            let c = fold(sum16(ip.header(), 0));
            ip.set_checksum(c);
            sum16(ip.addr_bytes(), proto + seg_l4_len as u32)
        } else {
            let mut ip = Ipv6Packet::new_unchecked(net);
            ip.set_payload_len((seg_len - l3 - ipv6::HEADER_LEN) as u16);
            sum16(ip.addr_bytes(), proto + seg_l4_len as u32)
        };
        // Transport layer.
        if tcp {
            let mut t = TcpPacket::new_unchecked(transport);
            t.set_seq_number(seq0.wrapping_add((i * mss) as u32));
            let mut flags = t.flags();
            if !last {
                flags &= !(FLAG_FIN | FLAG_PSH); // FIN and PSH only on the last segment
            }
            if i > 0 {
                flags &= !FLAG_CWR; // CWR only on the first
            }
            t.set_flags(flags);
            t.set_checksum(0);
            let c = fold(sum16(payload, sum16(t.header(), pseudo)));
            t.set_checksum(c);
        } else {
            let mut u = UdpPacket::new_unchecked(transport);
            u.set_len(seg_l4_len as u16);
            u.set_checksum(0);
            let mut c = fold(sum16(payload, sum16(u.header(), pseudo)));
            if c == 0 {
                c = 0xffff; // UDP: zero means "no checksum"
            }
            u.set_checksum(c);
        }
        each(scratch, payload);
    }
    Ok(())
}

/// Largest IPv4 packet a coalesced frame may become.
const MAX_COALESCED_IP: usize = 65535;

/// Where a coalesced frame's TCP header starts: after an Ethernet header and an IPv4 header without
/// options (the only frames that join a run).
const COALESCED_L4: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// What makes a TCP/IPv4 frame eligible to join a coalesced run, and where its parts are.
///
/// The fixed-size headers are held as arrays: their views' accessors then need no bounds checks, which
/// matters because every frame written to the TAP device is parsed here and compared with its
/// predecessor.
#[derive(Clone, Copy)]
struct TcpV4<'a> {
    frame: &'a [u8],
    eth: EthernetFrame<&'a [u8; ethernet::HEADER_LEN]>,
    ip: Ipv4Packet<&'a [u8; ipv4::HEADER_LEN]>,
    /// The TCP header without its options.
    tcp: TcpPacket<&'a [u8; tcp::HEADER_LEN]>,
    options: &'a [u8],
    payload_at: usize,
}

impl<'a> TcpV4<'a> {
    /// A plain TCP/IPv4 frame without IP options or fragmentation, carrying payload; else None.
    fn parse(frame: &'a [u8]) -> Option<TcpV4<'a>> {
        let (eth, rest) = frame.split_first_chunk()?;
        let (ip, rest) = rest.split_first_chunk()?;
        // Whole by their array types; the IPv4 header is whole once it is known to have no options.
        let eth = EthernetFrame::new_unchecked(eth);
        let ip = Ipv4Packet::new_unchecked(ip);
        if eth.ethertype() != ETHERTYPE_IPV4 {
            return None;
        }
        if ip.version() != 4 || ip.header_len() != ipv4::HEADER_LEN {
            return None; // IP options
        }
        if ip.protocol() != IPPROTO_TCP || ip.is_fragment() {
            return None;
        }
        if ip.total_len() as usize + ethernet::HEADER_LEN != frame.len() {
            return None; // Ethernet padding or truncation: leave it alone
        }
        let tcp = TcpPacket::new_checked(rest).ok()?;
        if tcp.payload().is_empty() {
            return None;
        }
        Some(TcpV4 {
            frame,
            eth,
            ip,
            tcp: TcpPacket::new_unchecked(rest.first_chunk()?),
            options: &rest[tcp::HEADER_LEN..tcp.header_len()],
            payload_at: COALESCED_L4 + tcp.header_len(),
        })
    }

    fn payload_len(&self) -> usize {
        self.frame.len() - self.payload_at
    }

    fn seq(&self) -> u32 {
        self.tcp.seq_number()
    }

    fn flags(&self) -> u8 {
        self.tcp.flags()
    }

    /// Whether `next` continues this segment's run: same Ethernet and IP addressing, same TCP header
    /// apart from the sequence number (options included, as Linux GRO requires), contiguous, and this
    /// one a plain ACK.
    fn continued_by(&self, next: &TcpV4, expected_seq: u32) -> bool {
        let (a, b) = (&self.tcp, &next.tcp);
        a.flags() == FLAG_ACK
            && (b.flags() == FLAG_ACK || b.flags() == FLAG_ACK | FLAG_PSH)
            && b.seq_number() == expected_seq
            && self.payload_at == next.payload_at
            && self.eth.header() == next.eth.header()
            && self.ip.dscp_ecn() == next.ip.dscp_ecn()
            && self.ip.ttl() == next.ip.ttl()
            && self.ip.protocol() == next.ip.protocol()
            && self.ip.addr_bytes() == next.ip.addr_bytes()
            && a.src_port() == b.src_port()
            && a.dst_port() == b.dst_port()
            && a.ack_number() == b.ack_number()
            && a.window_len() == b.window_len()
            && self.options == next.options
    }
}

/// Coalesces runs of consecutive segments of one TCP/IPv4 stream into one large frame with a virtio-net
/// header asking the kernel for segmentation offload (the reverse of [`split`]; user-space GRO). Every
/// frame in `frames` ends up in exactly one write, in order: `write(buf)` is called with a virtio-net
/// header followed by either one frame as it was or one coalesced frame. This turns one TAP `write` per
/// frame into one per run, and the receiving TCP stack then sees fewer, larger segments (fewer ACKs).
#[cfg(test)]
pub fn coalesce(frames: &[Vec<u8>], buf: &mut Vec<u8>, mut write: impl FnMut(&[u8])) {
    // Laid out as the protocol core's output queue holds them: back to back in one buffer.
    let bytes = frames.concat();
    let mut ranges = Vec::new();
    let mut at = 0;
    for f in frames {
        ranges.push(at..at + f.len());
        at += f.len();
    }
    let mut i = 0;
    let mut w = TapWrite::default();
    while i < frames.len() {
        i = coalesce_next(&bytes, &ranges, i, &mut w);
        buf.clear();
        buf.extend_from_slice(&w.head);
        for r in &w.pieces {
            buf.extend_from_slice(&bytes[r.clone()]);
        }
        write(buf);
    }
}

/// Most frames one coalesced write carries: bounds the gather list (a stack array in the driver), and is
/// well above the 46 full-size segments that fit the 64 KiB an IP packet may grow to.
pub const MAX_RUN: usize = 63;

/// One TAP write, described without copying the frames: `head` (the virtio-net header, and for a
/// coalesced run the first frame's rewritten headers) followed by `pieces` of the frames' buffer (a whole
/// frame, or the run's payloads). Both are reused between writes.
#[derive(Default)]
pub struct TapWrite {
    /// Bytes built for this write.
    pub head: Vec<u8>,
    /// Ranges of the frames' buffer that follow `head`, in order.
    pub pieces: Vec<Range<usize>>,
}

/// One step of [`coalesce`]: describes in `out` the write for the run starting at frame `i` (a virtio-net
/// header and one frame, or one coalesced frame) and returns the index after the run. The caller writes it
/// to the TAP device with one vectored write (asynchronously, which is why this is a step and not a loop).
/// Frame `k` is `bytes[ranges[k]]`.
pub fn coalesce_next(bytes: &[u8], ranges: &[Range<usize>], i: usize, out: &mut TapWrite) -> usize {
    let frames = Frames { bytes, ranges };
    out.head.clear();
    out.pieces.clear();
    let Some(first) = TcpV4::parse(frames.get(i)) else {
        out.head.extend_from_slice(&VnetHdr::data_valid());
        out.pieces.push(ranges[i].clone());
        return i + 1;
    };
    let mss = first.payload_len();
    let mut prev = first;
    let mut expected = first.seq().wrapping_add(mss as u32);
    let mut total = first.frame.len() - ethernet::HEADER_LEN;
    let mut j = i + 1;
    let mut last_flags = first.flags();
    while j < frames.len() && j - i < MAX_RUN {
        let Some(next) = TcpV4::parse(frames.get(j)) else {
            break;
        };
        let n = next.payload_len();
        if prev.payload_len() != mss
            || n > mss
            || total + n > MAX_COALESCED_IP
            || !prev.continued_by(&next, expected)
        {
            break;
        }
        total += n;
        expected = expected.wrapping_add(n as u32);
        last_flags = next.flags();
        prev = next;
        j += 1;
    }
    if j - i == 1 {
        out.head.extend_from_slice(&VnetHdr::data_valid());
        out.pieces.push(ranges[i].clone());
        return j;
    }
    // The virtio-net header: TCPv4 segmentation, checksum to complete from the TCP header on.
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: first.payload_at as u16,
        gso_size: mss as u16,
        csum_start: COALESCED_L4 as u16,
        csum_offset: tcp::CHECKSUM_OFFSET as u16,
    };
    out.head.extend_from_slice(&h.to_bytes());
    out.head.extend_from_slice(&first.frame[..first.payload_at]);
    // Every frame of the run has the first one's header length (`continued_by` checks it).
    for r in &ranges[i..j] {
        out.pieces.push(r.start + first.payload_at..r.end);
    }
    // The first frame's headers, rewritten for the whole run.
    let (net, transport) =
        out.head[VNET_HDR_LEN + ethernet::HEADER_LEN..].split_at_mut(ipv4::HEADER_LEN);
    let mut ip = Ipv4Packet::new_unchecked(net);
    ip.set_total_len(total as u16);
    ip.set_checksum(0);
    let c = fold(sum16(ip.header(), 0));
    ip.set_checksum(c);
    let mut t = TcpPacket::new_unchecked(transport);
    t.set_flags(last_flags); // PSH of the last segment, if any
                             // CHECKSUM_PARTIAL: the field holds the (non-inverted) pseudo-header sum.
    let tcp_len = (total - ipv4::HEADER_LEN) as u32;
    let pseudo = !fold(sum16(ip.addr_bytes(), IPPROTO_TCP as u32 + tcp_len));
    t.set_checksum(pseudo);
    j
}

/// Frames laid back to back in one buffer.
struct Frames<'a> {
    bytes: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Frames<'a> {
    fn get(&self, k: usize) -> &'a [u8] {
        &self.bytes[self.ranges[k].clone()]
    }

    fn len(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies a frame's IPv4 header checksum and its TCP/UDP checksum the way a receiver would.
    fn checksums_ok(f: &[u8]) -> bool {
        let (l3, et) = EthernetFrame::new_checked(f)
            .and_then(|e| e.network_header())
            .unwrap();
        let (l4, proto, pseudo) = if et == ETHERTYPE_IPV4 {
            let ip = Ipv4Packet::new_checked(&f[l3..]).unwrap();
            if fold(sum16(ip.header(), 0)) != 0 {
                return false;
            }
            let l4 = l3 + ip.header_len();
            (l4, ip.protocol() as u32, sum16(ip.addr_bytes(), 0))
        } else {
            let ip = Ipv6Packet::new_checked(&f[l3..]).unwrap();
            (
                l3 + ipv6::HEADER_LEN,
                ip.next_header() as u32,
                sum16(ip.addr_bytes(), 0),
            )
        };
        let len = (f.len() - l4) as u32;
        fold(sum16(&f[l4..], pseudo + proto + len)) == 0
    }

    fn tcp4_gso(payload: usize, mss: u16, flags: u8) -> Vec<u8> {
        let mut v = vec![0u8; VNET_HDR_LEN];
        v[1] = GSO_TCPV4;
        v[4..6].copy_from_slice(&mss.to_le_bytes());
        v[6..8].copy_from_slice(&34u16.to_le_bytes()); // csum_start = 14 + 20
        v[8..10].copy_from_slice(&16u16.to_le_bytes());
        v[0] = F_NEEDS_CSUM;
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 4..14 + 6].copy_from_slice(&1000u16.to_be_bytes());
        f[14 + 8] = 64;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&5000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[38..42].copy_from_slice(&0xffff_fff0u32.to_be_bytes()); // wraps
        f[46] = 5 << 4;
        f[47] = flags;
        f.extend((0..payload).map(|i| (i % 253) as u8));
        v.extend(f);
        v
    }

    #[test]
    fn tcp4_is_cut_into_valid_segments() {
        let mut buf = tcp4_gso(1360 * 3 + 100, 1360, 0x18 | 0x01 | 0x80); // PSH|ACK, FIN, CWR
        let original = buf[VNET_HDR_LEN..].to_vec();
        let mut scratch = Vec::new();
        let mut segs: Vec<Vec<u8>> = Vec::new();
        split(&mut buf, &mut scratch, |h, t| segs.push([h, t].concat())).unwrap();
        assert_eq!(segs.len(), 4);
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(checksums_ok(s), "segment {i} checksums");
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 0xffff_fff0u32.wrapping_add(1360 * i as u32));
            let id = u16::from_be_bytes([s[18], s[19]]);
            assert_eq!(id, 1000 + i as u16);
            let total = u16::from_be_bytes([s[16], s[17]]) as usize;
            assert_eq!(total, s.len() - 14);
            let flags = s[47];
            assert_eq!(flags & 0x01 != 0, i == 3, "FIN only last");
            assert_eq!(flags & 0x08 != 0, i == 3, "PSH only last");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR only first");
            assert!(s.len() <= 14 + 20 + 20 + 1360);
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, original[54..]);
    }

    #[test]
    fn udp6_uso_and_plain_frames() {
        // IPv6 UDP, 2 segments of 1000 and 1 of 10.
        let mut v = vec![0u8; VNET_HDR_LEN];
        v[1] = GSO_UDP_L4;
        v[4..6].copy_from_slice(&1000u16.to_le_bytes());
        v[6..8].copy_from_slice(&54u16.to_le_bytes());
        let mut f = vec![0u8; 14 + 40 + 8];
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f[14] = 0x60;
        f[14 + 6] = 17;
        f[14 + 8] = 0xfd;
        f[14 + 24] = 0xfd;
        f[14 + 39] = 2;
        f.extend(std::iter::repeat_n(7u8, 2010));
        v.extend(f);
        let mut segs = Vec::new();
        split(&mut v, &mut Vec::new(), |h, t| segs.push([h, t].concat())).unwrap();
        assert_eq!(segs.len(), 3);
        for s in &segs {
            assert!(checksums_ok(s));
            let ulen = u16::from_be_bytes([s[58], s[59]]) as usize;
            assert_eq!(ulen, s.len() - 54);
        }
        // A plain frame with no offload passes through untouched.
        let mut plain = vec![0u8; VNET_HDR_LEN];
        plain.extend_from_slice(&[0xffu8; 60]);
        let mut got = Vec::new();
        split(&mut plain, &mut Vec::new(), |h, t| {
            got.push([h, t].concat())
        })
        .unwrap();
        assert_eq!(got, vec![vec![0xffu8; 60]]);
    }

    #[test]
    fn partial_checksum_is_completed() {
        // A single TCP segment with NEEDS_CSUM: the field holds the pseudo-header sum.
        let mut buf = tcp4_gso(300, 1360, 0x18);
        buf[1] = GSO_NONE;
        let f = &mut buf[VNET_HDR_LEN..];
        let len = (f.len() - 34) as u32;
        let pseudo = sum16(&f[26..34], 6 + len);
        let folded = !fold(pseudo); // the kernel stores the folded, non-inverted sum
        f[50..52].copy_from_slice(&folded.to_be_bytes());
        // IPv4 header checksum as the kernel would have it.
        let ip_len = ((f.len() - 14) as u16).to_be_bytes();
        f[16..18].copy_from_slice(&ip_len);
        let c = fold(sum16(&f[14..34], 0));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let mut out = Vec::new();
        split(&mut buf, &mut Vec::new(), |h, t| out.push([h, t].concat())).unwrap();
        assert!(checksums_ok(&out[0]));
    }

    #[test]
    fn long_runs_are_cut_at_the_gather_limit() {
        // 100 small segments of one stream: MAX_RUN per write, and nothing lost or reordered.
        let mut tso = tcp4_gso(100 * 100, 100, 0x10);
        let mut segs: Vec<Vec<u8>> = Vec::new();
        split(&mut tso, &mut Vec::new(), |h, t| segs.push([h, t].concat())).unwrap();
        assert_eq!(segs.len(), 100);
        let mut writes: Vec<Vec<u8>> = Vec::new();
        coalesce(&segs, &mut Vec::new(), |w| writes.push(w.to_vec()));
        assert_eq!(writes.len(), 2);
        let mut again: Vec<Vec<u8>> = Vec::new();
        for w in &writes {
            split(&mut w.clone(), &mut Vec::new(), |h, t| {
                again.push([h, t].concat())
            })
            .unwrap();
        }
        assert_eq!(again.len(), 100);
        let counts: Vec<usize> = writes
            .iter()
            .map(|w| {
                let mut n = 0;
                split(&mut w.clone(), &mut Vec::new(), |_, _| n += 1).unwrap();
                n
            })
            .collect();
        assert_eq!(counts, vec![MAX_RUN, 100 - MAX_RUN]);
        for (a, b) in again.iter().zip(&segs) {
            assert_eq!(a[26..], b[26..], "same addresses, TCP header and payload");
        }
    }

    #[test]
    fn coalesce_reverses_split() {
        // A 64 KiB-class TSO frame, cut as a sender would, then coalesced as the receiver does: one write,
        // and cutting that again gives back the same segments.
        let mut tso = tcp4_gso(1360 * 40 + 7, 1360, 0x18);
        let mut segs: Vec<Vec<u8>> = Vec::new();
        split(&mut tso, &mut Vec::new(), |h, t| segs.push([h, t].concat())).unwrap();
        assert_eq!(segs.len(), 41);
        let mut writes: Vec<Vec<u8>> = Vec::new();
        coalesce(&segs, &mut Vec::new(), |w| writes.push(w.to_vec()));
        assert_eq!(writes.len(), 1, "one run, one write");
        let mut again: Vec<Vec<u8>> = Vec::new();
        split(&mut writes[0].clone(), &mut Vec::new(), |h, t| {
            again.push([h, t].concat())
        })
        .unwrap();
        assert_eq!(again.len(), segs.len());
        for (a, b) in again.iter().zip(&segs) {
            // IP ids are renumbered from the first; everything else is identical.
            assert_eq!(a[..18], b[..18]);
            assert_eq!(a[20..24], b[20..24]);
            assert_eq!(a[26..], b[26..]);
        }
    }

    #[test]
    fn coalesce_keeps_order_and_breaks_runs() {
        let mut tso = tcp4_gso(1360 * 4, 1360, 0x10);
        let mut segs: Vec<Vec<u8>> = Vec::new();
        split(&mut tso, &mut Vec::new(), |h, t| segs.push([h, t].concat())).unwrap();
        // An ARP-sized frame in the middle breaks the run; a gap in sequence numbers breaks it too.
        let arp = vec![0xffu8; 42];
        let mut frames = vec![
            segs[0].clone(),
            segs[1].clone(),
            arp.clone(),
            segs[3].clone(),
        ];
        frames.push(segs[2].clone()); // out of order: its own write
        let mut writes: Vec<Vec<u8>> = Vec::new();
        coalesce(&frames, &mut Vec::new(), |w| writes.push(w.to_vec()));
        assert_eq!(writes.len(), 4);
        assert_eq!(writes[1][VNET_HDR_LEN..], arp[..]);
        assert_eq!(writes[2][VNET_HDR_LEN..], segs[3][..]);
        assert_eq!(writes[3][VNET_HDR_LEN..], segs[2][..]);
        let mut first: Vec<Vec<u8>> = Vec::new();
        split(&mut writes[0].clone(), &mut Vec::new(), |h, t| {
            first.push([h, t].concat())
        })
        .unwrap();
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn wide_checksum_sum_matches_the_textbook_one() {
        fn textbook(data: &[u8], mut acc: u32) -> u32 {
            for c in data.chunks(2) {
                acc += (c[0] as u32) << 8 | c.get(1).copied().unwrap_or(0) as u32;
            }
            acc
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300usize {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly 0xff bytes, to force carries out of the wide words.
                    if seed & 3 == 0 {
                        seed as u8
                    } else {
                        0xff
                    }
                })
                .collect();
            for acc in [0, 0x1234, 0xfffe] {
                assert_eq!(
                    fold(sum16(&data, acc)),
                    fold(textbook(&data, acc)),
                    "length {len}"
                );
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for n in 0..3000usize {
            let len = n % 200;
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if len > 2 && n % 3 == 0 {
                b[1] = [GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4][n % 3];
            }
            let _ = split(&mut b, &mut Vec::new(), |_, _| {});
        }
    }
}
