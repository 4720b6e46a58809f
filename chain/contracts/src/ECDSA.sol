// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Signature recovery with the rules (and revert strings) of OpenZeppelin 4.4's `ECDSA`, which the
/// deployed TicketBroker was built with: high-s and v outside {27, 28} are rejected.
library ECDSA {
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// `"\x19Ethereum Signed Message:\n32" ‖ hash` (EIP-191 personal_sign of a 32-byte message).
    function toEthSignedMessageHash(bytes32 _hash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", _hash));
    }

    /// Recovers the signer of a 65-byte r ‖ s ‖ v signature.
    function recover(bytes32 _hash, bytes memory _sig) internal pure returns (address) {
        require(_sig.length == 65, "ECDSA: invalid signature length");
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(_sig, 0x20))
            s := mload(add(_sig, 0x40))
            v := byte(0, mload(add(_sig, 0x60)))
        }
        return recover(_hash, v, r, s);
    }

    function recover(bytes32 _hash, uint8 _v, bytes32 _r, bytes32 _s) internal pure returns (address) {
        require(uint256(_s) <= HALF_N, "ECDSA: invalid signature 's' value");
        require(_v == 27 || _v == 28, "ECDSA: invalid signature 'v' value");
        address signer = ecrecover(_hash, _v, _r, _s);
        require(signer != address(0), "ECDSA: invalid signature");
        return signer;
    }
}
