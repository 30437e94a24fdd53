use super::*;

/// A query as a stub resolver sends it: `id`, RD, one question.
pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&encode_name(name).unwrap());
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    msg
}

/// `query` with an EDNS0 OPT record announcing `size`.
pub(crate) fn query_edns(id: u16, name: &str, qtype: u16, size: u16) -> Vec<u8> {
    let mut msg = query(id, name, qtype);
    msg[11] = 1;
    msg.extend_from_slice(&[0, 0, 41]);
    msg.extend_from_slice(&size.to_be_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    msg
}

const WEB_NET_A: [u8; 25] = [
    0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header, RD
    0x03, b'W', b'e', b'b', 0x03, b'N', b'E', b'T', 0x00, // Web.NET
    0x00, 0x01, 0x00, 0x01, // A IN
];

#[test]
fn parses_a_hand_assembled_query() {
    let q = parse_query(&WEB_NET_A).unwrap();
    assert_eq!(q.id, 0xabcd);
    assert_eq!(q.name, "web.net");
    assert_eq!(
        (q.qtype, q.qclass, q.rd, q.udp_size),
        (TYPE_A, CLASS_IN, true, None)
    );
    assert_eq!(q.wire_name, WEB_NET_A[12..21].to_vec(), "case kept for the echo");

    let mut no_rd = WEB_NET_A;
    no_rd[2] = 0;
    assert!(!parse_query(&no_rd).unwrap().rd);
}

#[test]
fn reads_the_edns0_udp_size() {
    let q = parse_query(&query_edns(1, "x", TYPE_A, 4096)).unwrap();
    assert_eq!(q.udp_size, Some(4096));
    // An additional record that does not parse is ignored, the question still counts.
    let mut broken = query_edns(1, "x", TYPE_A, 4096);
    broken.truncate(broken.len() - 3);
    assert_eq!(parse_query(&broken).unwrap().udp_size, None);
}

#[test]
fn follows_backward_compression_pointers_and_refuses_loops() {
    // "a" then a pointer to offset 4, whose byte (qdcount's high byte, 0) ends the name.
    let mut msg = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0xc0, 4, 0, 1, 0, 1];
    let q = parse_query(&msg).unwrap();
    assert_eq!((q.name.as_str(), q.qtype), ("a", TYPE_A));
    assert_eq!(q.wire_name, vec![1, b'a', 0]);

    // A chain: "x" -> "www" -> "example.com" at offsets after the question.
    msg.extend_from_slice(&[
        7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
    ]);
    msg.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 20]);
    msg.extend_from_slice(&[1, b'x', 0xc0, 33]);
    let (wire, end) = read_name(&msg, 39).unwrap();
    assert_eq!(name_text(&wire), "x.www.example.com");
    assert_eq!(end, 43);

    // Pointers to itself, forwards, or into a loop.
    let to_self = [0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
    assert_eq!(parse_query(&to_self), Err(DnsError::Pointer(12)));
    let forwards = [0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 16, 0, 1, 0, 1, 0];
    assert_eq!(parse_query(&forwards), Err(DnsError::Pointer(16)));
    let looped = [0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 1, b'z', 0xc0, 10, 0, 1, 0, 1];
    assert_eq!(read_name(&looped, 12).unwrap_err(), DnsError::Pointer(10));
}

#[test]
fn malformed_queries_name_their_fault_and_rcode() {
    assert_eq!(parse_query(&WEB_NET_A[..11]), Err(DnsError::Short(11)));
    assert_eq!(DnsError::Short(11).rcode(), None);

    let mut response = WEB_NET_A;
    response[2] |= 0x80;
    assert_eq!(parse_query(&response), Err(DnsError::Response));
    assert_eq!(DnsError::Response.rcode(), None);

    let mut status = WEB_NET_A;
    status[2] |= 2 << 3;
    assert_eq!(parse_query(&status), Err(DnsError::Opcode(2)));
    assert_eq!(DnsError::Opcode(2).rcode(), Some(RCODE_NOTIMP));

    let mut two = WEB_NET_A;
    two[5] = 2;
    assert_eq!(parse_query(&two), Err(DnsError::Questions(2)));
    assert_eq!(DnsError::Truncated.rcode(), Some(RCODE_FORMERR));
    for cut in 12..WEB_NET_A.len() {
        assert_eq!(
            parse_query(&WEB_NET_A[..cut]),
            Err(DnsError::Truncated),
            "cut at {cut}"
        );
    }

    let mut label_type = WEB_NET_A;
    label_type[12] = 0x43;
    assert_eq!(parse_query(&label_type), Err(DnsError::LabelType(0x43)));

    let longest = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
    assert_eq!(
        parse_query(&query(1, &longest, TYPE_A)).unwrap().wire_name.len(),
        255
    );
    let mut over = WEB_NET_A[..12].to_vec();
    for _ in 0..4 {
        over.push(63);
        over.extend_from_slice(&[b'a'; 63]);
    }
    over.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(parse_query(&over), Err(DnsError::NameTooLong));
}

#[test]
fn escapes_bytes_a_name_cannot_show() {
    let msg = [
        0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'.', 0xff, 1, b'\\', 0, 0, 1, 0, 1,
    ];
    assert_eq!(parse_query(&msg).unwrap().name, "a\\046\\255.\\092");
}

#[test]
fn replies_byte_for_byte() {
    let q = parse_query(&WEB_NET_A).unwrap();
    let a = reply(&WEB_NET_A, &q, &Answer::Addrs(vec!["10.0.0.2".parse().unwrap()]));
    let mut want = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    want.extend_from_slice(&WEB_NET_A[12..]);
    want.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x02, 0x58, 0, 4, 10, 0, 0, 2]);
    assert_eq!(a, want);

    let mut aaaa_q = WEB_NET_A;
    aaaa_q[22] = 28;
    let q6 = parse_query(&aaaa_q).unwrap();
    let six = reply(&aaaa_q, &q6, &Answer::Addrs(vec!["fd00::2".parse().unwrap()]));
    assert_eq!(&six[6..8], &[0, 1]);
    assert_eq!(&six[25..37], &[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0x02, 0x58, 0, 16]);
    assert_eq!(&six[37..], &"fd00::2".parse::<Ipv6Addr>().unwrap().octets());

    let none = reply(&WEB_NET_A, &q, &Answer::NoData);
    assert_eq!(none[..12], [0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(none[12..], WEB_NET_A[12..]);
}

#[test]
fn replies_to_ptr_with_an_absolute_name() {
    let msg = query(9, "2.0.0.10.in-addr.arpa", TYPE_PTR);
    let q = parse_query(&msg).unwrap();
    let out = reply(&msg, &q, &Answer::Name("web.mynet".into()));
    let rdata = [3, b'w', b'e', b'b', 5, b'm', b'y', b'n', b'e', b't', 0];
    let mut want = vec![0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 0x02, 0x58, 0, rdata.len() as u8];
    want.extend_from_slice(&rdata);
    assert_eq!(&out[msg.len()..], &want[..]);
    assert_eq!(reply_code(&out), Some((0, false)));

    let bad = reply(&msg, &q, &Answer::Name(format!("{}.x", "a".repeat(64))));
    assert_eq!(bad, error_reply(&msg, RCODE_SERVFAIL));
}

#[test]
fn reply_copies_rd_and_cd_and_never_sets_aa() {
    let mut msg = WEB_NET_A;
    msg[2] = 0x00;
    msg[3] = 0x10; // CD
    let q = parse_query(&msg).unwrap();
    let out = reply(&msg, &q, &Answer::NoData);
    assert_eq!(&out[2..4], &[0x80, 0x90]);
}

#[test]
fn a_udp_reply_too_big_is_truncated_with_tc() {
    let msg = query(5, "many", TYPE_A);
    let q = parse_query(&msg).unwrap();
    let addrs: Vec<IpAddr> = (1..=40).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))).collect();
    let out = reply_sized(&msg, &q, &Answer::Addrs(addrs.clone()), UDP_SIZE);
    // 12 + 6 ("many") + 4 = 22 bytes before the answers, 16 per answer: 30 fit in 512.
    assert_eq!(out.len(), 22 + 30 * 16);
    assert_eq!(out[2] & 0x02, 0x02, "TC");
    assert_eq!(&out[6..8], &[0, 30]);
    let full = reply(&msg, &q, &Answer::Addrs(addrs));
    assert_eq!((full.len(), full[2] & 0x02), (22 + 40 * 16, 0));
}

#[test]
fn error_replies_echo_the_question_when_there_is_one() {
    let out = error_reply(&WEB_NET_A, RCODE_SERVFAIL);
    let mut want = vec![0xab, 0xcd, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(&WEB_NET_A[12..]);
    assert_eq!(out, want);
    assert_eq!(error_reply(&WEB_NET_A, RCODE_NXDOMAIN)[3], 0x83);
    assert_eq!(error_reply(&WEB_NET_A, RCODE_REFUSED)[3], 0x85);

    let formerr = error_reply(&WEB_NET_A[..15], RCODE_FORMERR);
    assert_eq!(formerr, vec![0xab, 0xcd, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(error_reply(&WEB_NET_A[..11], RCODE_FORMERR).is_empty());
}

#[test]
fn matches_replies_and_rewrites_ids() {
    let q = parse_query(&WEB_NET_A).unwrap();
    let mut resp = error_reply(&WEB_NET_A, RCODE_NXDOMAIN);
    assert!(is_reply_to(&resp, 0xabcd, &q));
    assert!(!is_reply_to(&resp, 0xabce, &q));
    assert!(!is_reply_to(&WEB_NET_A, 0xabcd, &q), "a query is no reply");
    resp[13] = b'X'; // "Xeb": another name
    assert!(!is_reply_to(&resp, 0xabcd, &q));
    resp[13] = b'w'; // the same name in other case
    assert!(is_reply_to(&resp, 0xabcd, &q));
    let bare = [0xab, 0xcd, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(is_reply_to(&bare, 0xabcd, &q), "an error without a question");

    assert_eq!(with_id(&WEB_NET_A, 0x1234)[..2], [0x12, 0x34]);
    assert_eq!(with_id(&WEB_NET_A, 0x1234)[2..], WEB_NET_A[2..]);
    assert_eq!(reply_code(&resp), Some((RCODE_NXDOMAIN, false)));
    assert_eq!(reply_code(&resp[..5]), None);
}

#[test]
fn reverse_names_give_addresses() {
    assert_eq!(
        ptr_addr("2.0.0.10.in-addr.arpa"),
        Some("10.0.0.2".parse().unwrap())
    );
    assert_eq!(
        ptr_addr("255.1.168.192.in-addr.arpa"),
        Some("192.168.1.255".parse().unwrap())
    );
    let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    assert_eq!(ptr_addr(v6), Some("fd00::2".parse().unwrap()));
    let v6b = "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa";
    assert_eq!(ptr_addr(v6b), Some("4321:0:1:2:3:4:567:89ab".parse().unwrap()));
    for bad in [
        "1.168.192.in-addr.arpa",
        "1.1.1.1.1.in-addr.arpa",
        "01.0.0.10.in-addr.arpa",
        "+1.0.0.10.in-addr.arpa",
        "256.0.0.10.in-addr.arpa",
        ".0.0.10.in-addr.arpa",
        "in-addr.arpa",
        "2.0.0.10.in-addr.arpa.example",
        "0.d.f.ip6.arpa",
        &v6.replacen('2', "22", 1),
        &v6.replacen('2', "g", 1),
        "web",
    ] {
        assert_eq!(ptr_addr(bad), None, "{bad}");
    }
}

#[test]
fn names_encode_with_or_without_the_root_dot() {
    assert_eq!(encode_name("a.bc").unwrap(), vec![1, b'a', 2, b'b', b'c', 0]);
    assert_eq!(encode_name("a.bc."), encode_name("a.bc"));
    assert_eq!(encode_name("").unwrap(), vec![0]);
    assert_eq!(encode_name("a..b"), None);
    assert_eq!(encode_name(&"a".repeat(64)), None);
    assert_eq!(encode_name(&vec!["a".repeat(63); 4].join(".")), None);
}

#[test]
fn nameservers_of_resolv_conf() {
    let text = "# generated\n\
                search example.com\n\
                nameserver 127.0.0.53\n\
                ; nameserver 9.9.9.9\n\
                nameserver   2001:db8::1  # trailing words\n\
                nameserver fe80::1%2\n\
                nameserver fe80::1%eth0\n\
                nameserver not-an-address\n\
                nameserver\n\
                options edns0 trust-ad\n\
                nameserver 10.0.0.1\n\
                nameserver 10.0.0.2\n";
    let got = nameservers(text);
    assert_eq!(
        got,
        vec![
            "127.0.0.53:53".parse().unwrap(),
            "[2001:db8::1]:53".parse().unwrap(),
            "[fe80::1%2]:53".parse().unwrap(),
        ]
    );
    assert_eq!(
        nameservers("nameserver 1.1.1.1\n")[0],
        "1.1.1.1:53".parse().unwrap()
    );
    assert!(nameservers("").is_empty());
}

/// Random, truncated and bit-flipped input: parse_query and the replies never panic, and a
/// query that parses keeps its invariants.
#[test]
fn fuzz_never_panics() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let valid = [
        WEB_NET_A.to_vec(),
        query_edns(3, "a.b.c", TYPE_AAAA, 1232),
        vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0xc0, 4, 0, 1, 0, 1],
    ];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for v in &valid {
        inputs.extend((0..=v.len()).map(|n| v[..n].to_vec()));
        for _ in 0..2000 {
            let mut m = v.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..m.len());
                m[at] ^= 1 << rng.u8(0..8);
            }
            inputs.push(m);
        }
    }
    for _ in 0..5000 {
        let len = rng.usize(0..80);
        let mut m: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        if m.len() > 5 && rng.bool() {
            m[2] &= 0x07; // a query with opcode 0, so parsing gets past the header more often
            m[4] = 0;
            m[5] = 1;
        }
        inputs.push(m);
    }
    let mut parsed = 0;
    for m in &inputs {
        let _ = error_reply(m, RCODE_FORMERR);
        let _ = reply_code(m);
        if let Ok(q) = parse_query(m) {
            parsed += 1;
            assert!(q.wire_name.len() <= MAX_NAME && q.wire_name.last() == Some(&0));
            let out = reply(m, &q, &Answer::Addrs(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]));
            assert!(is_reply_to(&out, q.id, &q));
            assert_eq!(parse_query(&with_id(&out, 1)), Err(DnsError::Response));
        }
    }
    assert!(
        parsed > 100,
        "only {parsed} inputs parsed: the fuzz does not reach the question"
    );
}
