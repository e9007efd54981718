/**
 * chronobound/etcd — leader election and leases on etcd v3, with the holder's
 * `TrueClock` doing the timing and the key's create revision as fencing token.
 *
 * Talks to etcd through its JSON gateway (`/v3/...`, etcd ≥ 3.4) with `fetch`:
 * no dependency. See docs/etcd.md.
 *
 * @module chronobound/etcd
 */
export {
  etcdElection,
  type EtcdElection,
  type EtcdElectionOptions,
  type EtcdLeader,
  type CampaignOptions,
} from './election.js';
export type { EtcdLease } from './held-lease.js';
export type { EtcdFetch } from './gateway.js';
export {
  EtcdError,
  EtcdNotServedError,
  EtcdUnavailableError,
  EtcdQuorumLostError,
  EtcdLeaseExpiredError,
  EtcdCompactedError,
  EtcdKeepAliveError,
  EtcdLeaseLostError,
  EtcdRequestError,
  type EtcdErrorCode,
  type EtcdEndpointFailure,
  type EtcdLostReason,
} from './errors.js';
