//! Bridge networking through rtnetlink (no `ip` commands): a bridge made on first use and
//! kept, one veth pair per container with the host end on the bridge, the other end moved
//! into the container and configured from inside it as `eth0`.

use std::{
    fs,
    io::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use futures::TryStreamExt as _;
use rtnetlink::{
    new_connection,
    packet_core::{
        NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
    },
    packet_route::RouteNetlinkMessage,
    sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr},
    AddressMessageBuilder, Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::config::NetConfig;

pub const BRIDGE: &str = "tracer0";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 1);
pub const PREFIX: u8 = 24;

fn connect() -> anyhow::Result<Handle> {
    let (conn, handle, _) = new_connection().context("opening an rtnetlink socket")?;
    tokio::spawn(conn);
    Ok(handle)
}

async fn index_of(handle: &Handle, name: &str) -> anyhow::Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        // The kernel answers a lookup of a missing name with ENODEV.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(e).with_context(|| format!("looking up link {name}")),
    }
}

/// The bridge's index, creating and addressing it on first use.
async fn ensure_bridge(handle: &Handle) -> anyhow::Result<u32> {
    if let Some(index) = index_of(handle, BRIDGE).await? {
        return Ok(index);
    }
    handle
        .link()
        .add(LinkBridge::new(BRIDGE).up().build())
        .execute()
        .await
        .or_else(|e| match e {
            // Another container created it at the same moment.
            rtnetlink::Error::NetlinkError(ref m) if m.raw_code() == -libc::EEXIST => Ok(()),
            e => Err(e),
        })
        .context("creating bridge")?;
    let index = index_of(handle, BRIDGE).await?.context("bridge vanished")?;
    let _ = handle
        .address()
        .add(index, IpAddr::V4(GATEWAY), PREFIX)
        .execute()
        .await;
    Ok(index)
}

/// Addresses are taken by creating a file named after them (atomic with `create_new`).
pub struct Ipam {
    dir: PathBuf,
}

impl Ipam {
    pub fn new(state_root: &Path) -> Self {
        Self {
            dir: state_root.join("ipam"),
        }
    }

    pub fn allocate(&self, owner: &str) -> anyhow::Result<Ipv4Addr> {
        fs::create_dir_all(&self.dir)?;
        for host in 2..=254u8 {
            let addr = Ipv4Addr::new(10, 89, 0, host);
            let path = self.dir.join(addr.to_string());
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(owner.as_bytes())?;
                    return Ok(addr);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("allocating {addr}")),
            }
        }
        bail!("no free address left in 10.89.0.0/24");
    }

    pub fn release(&self, addr: Ipv4Addr) {
        let _ = fs::remove_file(self.dir.join(addr.to_string()));
    }

    /// Addresses whose owner is not in `alive`.
    pub fn stale(&self, alive: &dyn Fn(&str) -> bool) -> Vec<Ipv4Addr> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| !fs::read_to_string(e.path()).is_ok_and(|owner| alive(&owner)))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }
}

/// Creates the pair with its host end on the bridge and up.
pub async fn create_veth(host: &str, peer: &str) -> anyhow::Result<()> {
    let handle = connect()?;
    let bridge = ensure_bridge(&handle).await?;
    handle
        .link()
        .add(LinkVeth::new(host, peer).build())
        .execute()
        .await
        .with_context(|| format!("creating veth {host}"))?;
    let index = index_of(&handle, host).await?.context("veth vanished")?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .controller(bridge)
                .up()
                .build(),
        )
        .execute()
        .await
        .with_context(|| format!("attaching {host} to {BRIDGE}"))
}

/// Moves a link into the network namespace of `pid`.
pub async fn move_to_netns(name: &str, pid: u32) -> anyhow::Result<()> {
    let handle = connect()?;
    let index = index_of(&handle, name)
        .await?
        .with_context(|| format!("no link {name}"))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).setns_by_pid(pid).build())
        .execute()
        .await
        .with_context(|| format!("moving {name} into the container"))
}

/// Deletes a link if it still exists (it goes away with its namespace otherwise).
pub async fn delete_link(name: &str) -> anyhow::Result<()> {
    let handle = connect()?;
    if let Some(index) = index_of(&handle, name).await? {
        handle
            .link()
            .del(index)
            .execute()
            .await
            .or_else(|e| match e {
                rtnetlink::Error::NetlinkError(ref m) if m.raw_code() == -libc::ENODEV => Ok(()),
                e => Err(e),
            })?;
    }
    Ok(())
}

/// From inside the container, which has a network namespace of its own: `lo` up, and the
/// moved veth end (where there is one) becomes `eth0`, addressed, up, with a default route
/// through the bridge. The init runs no async runtime (building one, with a connection, was
/// a sixth of a container's start): each request goes on one plain socket, and its
/// acknowledgement is awaited.
pub fn configure_inside(net: Option<&NetConfig>) -> anyhow::Result<()> {
    let mut rtnl = Requests::open()?;
    let lo = nix::net::if_::if_nametoindex("lo").context("no lo")?;
    rtnl.send(
        RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(lo).up().build()),
        0,
    )
    .context("bringing lo up")?;
    let Some(net) = net else {
        return Ok(());
    };
    let index = nix::net::if_::if_nametoindex(net.peer.as_str())
        .with_context(|| format!("{} did not arrive in the container", net.peer))?;
    let link = || LinkUnspec::new_with_index(index);
    rtnl.send(RouteNetlinkMessage::SetLink(link().name("eth0").build()), 0)
        .context("renaming to eth0")?;
    let address = AddressMessageBuilder::<Ipv4Addr>::new()
        .index(index)
        .address(net.address, net.prefix)
        .build();
    rtnl.send(RouteNetlinkMessage::NewAddress(address), NEW)
        .context("addressing eth0")?;
    rtnl.send(RouteNetlinkMessage::SetLink(link().up().build()), 0)
        .context("bringing eth0 up")?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(net.gateway)
        .output_interface(index)
        .build();
    rtnl.send(RouteNetlinkMessage::NewRoute(route), NEW)
        .context("adding the default route")
}

/// A request that makes something new (and fails if it is there).
const NEW: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// An rtnetlink socket for requests made one at a time, each awaited.
struct Requests {
    socket: Socket,
    seq: u32,
}

impl Requests {
    fn open() -> anyhow::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { socket, seq: 0 })
    }

    /// Sends one request (with `flags` besides request and acknowledge) and waits for its
    /// acknowledgement.
    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<()> {
        self.seq += 1;
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        request.header.sequence_number = self.seq;
        request.finalize();
        let mut bytes = vec![0; request.header.length as usize];
        request.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        // The acknowledgement quotes the request: room for it and its header.
        let mut reply = Vec::with_capacity(bytes.len() + 1024);
        let n = self.socket.recv(&mut reply, 0)?;
        let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply[..n])
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?;
        match answer.payload {
            NetlinkPayload::Error(e) if e.code.is_none() => Ok(()),
            NetlinkPayload::Error(e) => Err(e.to_io().into()),
            other => bail!("unexpected answer: {other:?}"),
        }
    }
}
