/**
 * What a node name is, everywhere (issue 14, item 10): a lowercase RFC 1123
 * DNS label, as the config requires (shared/config/problems.ts labelProblem
 * says why one is not). The handshake, gossip, enrolment, admissions,
 * invitations and rotations all take this one rule, so that a peer cannot
 * authenticate under a name its own records would then fail.
 */
export const NODE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
