// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MultiSigWallet: m-of-n owners sign one execution offline; anyone submits it
/// @notice Each owner signs the EIP-712 digest of Execute(to, value, data, nonce) under a domain
///         that binds this contract's address and the chain id, so a signature is good for one
///         execution on one wallet on one chain. Signatures are given in strictly increasing order
///         of their signers' addresses, which rules out a signer counted twice.
contract MultiSigWallet {
    bytes32 private constant DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    bytes32 private constant EXECUTE_TYPEHASH = keccak256(
        "Execute(address to,uint256 value,bytes data,uint256 nonce)"
    );
    bytes32 private constant NAME_HASH = keccak256("VenueMultiSig");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private constant HALF_N =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    address[] private owners;
    mapping(address => bool) public isOwner;
    uint256 public immutable threshold;
    uint256 public nonce;

    event Executed(uint256 indexed nonce, address indexed to, uint256 value, bytes data);
    event Deposited(address indexed from, uint256 value);

    constructor(address[] memory owners_, uint256 threshold_) {
        require(threshold_ > 0 && threshold_ <= owners_.length, "threshold");
        for (uint256 i = 0; i < owners_.length; i++) {
            address o = owners_[i];
            require(o != address(0) && !isOwner[o], "owner");
            isOwner[o] = true;
            owners.push(o);
        }
        threshold = threshold_;
    }

    receive() external payable {
        emit Deposited(msg.sender, msg.value);
    }

    function getOwners() external view returns (address[] memory) {
        return owners;
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this))
        );
    }

    /// @notice The digest each owner signs for the execution with the given nonce.
    function executionHash(address to, uint256 value, bytes calldata data, uint256 nonce_)
        public
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(EXECUTE_TYPEHASH, to, value, keccak256(data), nonce_));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function execute(
        address to,
        uint256 value,
        bytes calldata data,
        uint8[] calldata v,
        bytes32[] calldata r,
        bytes32[] calldata s
    ) external {
        uint256 used = nonce;
        _checkSignatures(executionHash(to, value, data, used), v, r, s);
        nonce = used + 1;
        (bool ok, ) = to.call{value: value}(data);
        require(ok, "call failed");
        emit Executed(used, to, value, data);
    }

    function _checkSignatures(
        bytes32 digest,
        uint8[] calldata v,
        bytes32[] calldata r,
        bytes32[] calldata s
    ) private view {
        uint256 count = v.length;
        require(count >= threshold, "too few signatures");
        require(r.length == count && s.length == count, "signature arrays");
        address last = address(0);
        for (uint256 i = 0; i < count; i++) {
            require(uint256(s[i]) <= HALF_N, "high s");
            address signer = ecrecover(digest, v[i], r[i], s[i]);
            require(signer != address(0) && isOwner[signer], "not an owner");
            require(signer > last, "signers out of order or repeated");
            last = signer;
        }
    }
}
