//! Addresses as the wire carries them: Ethernet MAC addresses and virtual IPv4 networks.

use std::net::Ipv4Addr;

use super::codec::{Codec, Reader};
use super::DecodeError;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Group addresses (broadcast and multicast) have the low bit of the first octet set.
    #[inline]
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A locally administered unicast address derived from `seed`, so an edge keeps its MAC across restarts
    /// without configuration (it is derived from the edge's public key).
    pub fn local_from_seed(seed: &[u8]) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&seed[..6]);
        m[0] = (m[0] & 0xfc) | 0x02;
        MacAddr(m)
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut m = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in m.iter_mut() {
            let p = parts
                .next()
                .ok_or("expected six hex octets like 02:00:00:00:00:01")?;
            if p.len() != 2 {
                return Err("expected six hex octets like 02:00:00:00:00:01");
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| "not a hex octet")?;
        }
        if parts.next().is_some() {
            return Err("expected six hex octets like 02:00:00:00:00:01");
        }
        Ok(MacAddr(m))
    }
}

/// A virtual IPv4 address with its prefix length; `0.0.0.0/0` on the wire means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Ipv4Net {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or("expected address/prefix, e.g. 10.0.0.1/24")?;
        let addr: Ipv4Addr = a.parse().map_err(|_| "not an IPv4 address")?;
        let prefix: u8 = p.parse().map_err(|_| "prefix is not a number")?;
        if prefix > 32 {
            return Err("prefix longer than 32");
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

impl Codec<'_> for MacAddr {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MacAddr(r.array()?))
    }
}

/// An optional virtual network: the address, then the prefix length; five zero bytes mean "none".
impl Codec<'_> for Option<Ipv4Net> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(n) => {
                out.extend_from_slice(&n.addr.octets());
                out.push(n.prefix);
            }
            None => out.extend_from_slice(&[0; 5]),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let addr = Ipv4Addr::from(r.array::<4>()?);
        let prefix = r.u8()?;
        if prefix > 32 {
            return Err(DecodeError::Invalid("prefix length"));
        }
        if addr.is_unspecified() && prefix == 0 {
            Ok(None)
        } else {
            Ok(Some(Ipv4Net { addr, prefix }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_and_net_parse() {
        let m: MacAddr = "02:aa:bb:cc:dd:0e".parse().unwrap();
        assert_eq!(m.to_string(), "02:aa:bb:cc:dd:0e");
        assert!("02:aa:bb:cc:dd".parse::<MacAddr>().is_err());
        assert!("02:aa:bb:cc:dd:ee:ff".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_group());
        let l = MacAddr::local_from_seed(&[0xff; 32]);
        assert!(!l.is_group());
        assert_eq!(l.0[0] & 2, 2);
        assert!("10.0.0.1/33".parse::<Ipv4Net>().is_err());
    }
}
