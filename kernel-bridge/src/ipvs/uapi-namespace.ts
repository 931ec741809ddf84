// The IPVS uapi constants as one object, for tests and tools that speak the
// protocol themselves (a fake netlink peer, a capture script).
import * as ipvsUapi from './uapi.js';

export { ipvsUapi };
