/**
 * What one agent tells the others about itself. A record is signed by the
 * member's persistent identity key (ed25519), so holders of the overlay key
 * can relay it but cannot forge or alter another member's record.
 */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
export type Role = 'master' | 'node';

export interface HostFacts {
  cores: number;
  memory_mb: number;
  os: string;
  agent_version: string;
}

/** Container health of one hosted node as seen by its agent. */
export interface NodeHealth {
  wesher: string;
  k3s: string;
}

export interface MemberRecord {
  /** Node name (the gossip identity name). */
  name: string;
  role: Role;
  /** host:port gossip endpoints peers should dial, best first. */
  addresses: string[];
  /** The node's own IPs (config `ip`, prefix stripped) for wesher's join list. */
  node_ips: string[];
  /** Overlay IP as wesher computes it from the name, once known. */
  overlay_ip: string | null;
  facts: HostFacts;
  /** Container health per hosted node name; {} for runtime none. */
  containers: Record<string, NodeHealth>;
  /** base64 ed25519 public identity key. */
  id_pub: string;
  /** When this identity was created (ms since epoch). Informative only: it is the sender's word (overlay-IP collisions go by what each agent saw first). */
  created_at: number;
  /** The admin's admission of this name for this identity (agent/admin/admission.ts), once it has one. */
  admission?: AdmissionProof;
  /**
   * The master only, once its k3s server has made its CA: the SHA-256 (64 hex
   * digits) of the server CA bundle, which agents pin in k3s's secure token
   * format (`K10<hash>::node:<agent_key>`). Signed with the record, so only the
   * (admitted) master can set it.
   */
  k3s_ca?: string;
  /**
   * The key rotation whose keys this member uses (its id, agent/admin/rotation.ts),
   * once it has switched to one: lets everyone see who still has to catch up.
   */
  keys?: string;
  /**
   * This member's view of its paths to the other members (issue 15), by
   * member name, for `status --mesh` and the path MTU problems: at most
   * LIMITS.paths entries. Republished at most once a minute (PATHS_PUBLISH_MS)
   * unless `up` or `mtu` changed: every record change is gossiped to everyone.
   */
  paths?: Record<string, PathView>;
}

/** One member's view of the path to one peer (issue 15). */
export interface PathView {
  /** A gossip connection to the peer is open, or its last probe was answered. */
  up: boolean;
  /** The last probe round trip, in whole ms; null: none measured yet. */
  rtt_ms: number | null;
  /** The path MTU to the peer's node address (wesher's traffic), in bytes; null: not measured yet. */
  mtu: number | null;
}

/**
 * What binds a record's name to its id_pub (agent/admin/admission.ts): an
 * admin signature, or, with `inv`, the use of an admin-signed invitation
 * that an admitted anchor granted (agent/gossip/invitations.ts).
 */
export interface AdmissionProof {
  /** ms since the epoch (for an invitation, the anchor's clock when it granted it); for one name, the greatest wins. */
  at: number;
  /** base64 ed25519 signature: by the admin key, or, with `inv`, by the granting anchor's identity key. */
  sig: string;
  inv?: InvitedProof;
}

/** The invitation part of an admission by invitation: all a member needs to check it with admin_pub alone. */
export interface InvitedProof {
  /** The invitation body the admin signed (agent/admin/invitation.ts InvitationBody). */
  body: { v: 1; id: string; anchors: string[]; admin_pub: string; exp: number; uses: number; node?: string; inv_pub: string };
  /** The admin's signature over body. */
  body_sig: string;
  /** When the new machine signed its use, and the invitation key's signature over it. */
  use_at: number;
  use_sig: string;
  /** The anchor that granted the use: its name, identity key and its own (admin-signed) admission. */
  anchor: string;
  anchor_id: string;
  anchor_adm: { at: number; sig: string };
}

/** A record plus its incarnation, signed together by the member. */
export interface SignedRecord {
  record: MemberRecord;
  incarnation: number;
  /** base64 ed25519 signature over canonical JSON of {record, incarnation}. */
  sig: string;
}
