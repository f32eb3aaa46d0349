// The guest image: what it is made of (inputs), how it is built and cached (build), the
// conventions of the guest it boots (guest), and the data disk it gets (disk).
export {
  AGENT_CFLAGS,
  GUEST_MODULES,
  KERNEL_META_PACKAGE,
  RECIPE_VERSION,
  REQUIRED_PACKAGES,
  defaultCacheDir,
  imageHash,
  imageInputs,
  type ImageInputs,
  type KernelPackage,
} from './inputs.js';
export {
  IMAGE_FIX_COMMAND,
  ImageDamagedError,
  assertImageIntact,
  buildImage,
  findImage,
  describeImage,
  formatImageReport,
  imageInfo,
  listImages,
  pruneImages,
  readImage,
  verifyImage,
  type BuildImageOptions,
  type ImageDamage,
  type ImageFile,
  type ImageInfo,
  type ImageReport,
} from './build.js';
export {
  AGENT_UDP_PORT,
  DEFAULT_HEARTBEAT_MS,
  IPERF3_PORT,
  bootArgv,
  guestAppend,
  parseGuestLine,
  type GuestBootOptions,
  type GuestLine,
} from './guest.js';
export { createDataDisk, type DataDiskOptions } from './disk.js';
