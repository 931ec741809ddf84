// ava's configuration for the run inside the IPVS guest (ipvs-vm.test.ts
// passes it with --config): the compiled test files directly, without the
// TypeScript provider, whose modules (execa and friends) cost seconds to
// load under TCG. The host compiled everything before booting the guest.
export default {
  files: ['build/kernel-bridge/ipvs-*.test.js'],
  timeout: '120s',
  workerThreads: false,
};
