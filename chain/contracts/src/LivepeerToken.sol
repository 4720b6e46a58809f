// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "./ECDSA.sol";

/// The Livepeer Token (LPT): an 18-decimal ERC-20 with EIP-2612 `permit`, role-gated `mint`/`burn`
/// (MINTER_ROLE, BURNER_ROLE) and role administration, with the interface (and revert strings) of
/// the deployed token (OpenZeppelin 4.9's ERC20, ERC20Permit and AccessControl).
contract LivepeerToken {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Mint(address indexed to, uint256 amount);
    event Burn(address indexed burner, uint256 amount);
    event RoleAdminChanged(bytes32 indexed role, bytes32 indexed previousAdminRole, bytes32 indexed newAdminRole);
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);
    event EIP712DomainChanged();

    bytes32 public constant DEFAULT_ADMIN_ROLE = 0x00;
    bytes32 private constant MINTER_ROLE = keccak256("MINTER_ROLE");
    bytes32 private constant BURNER_ROLE = keccak256("BURNER_ROLE");
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    string public constant name = "Livepeer Token";
    string public constant symbol = "LPT";
    uint8 public constant decimals = 18;
    string private constant DOMAIN_VERSION = "1";

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(address => uint256) public nonces;

    mapping(bytes32 => mapping(address => bool)) private roles;
    mapping(bytes32 => bytes32) private roleAdmins;

    modifier onlyRole(bytes32 _role) {
        _checkRole(_role, msg.sender);
        _;
    }

    constructor() {
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
    }

    // ERC-20

    function transfer(address _to, uint256 _amount) external returns (bool) {
        _transfer(msg.sender, _to, _amount);
        return true;
    }

    function transferFrom(address _from, address _to, uint256 _amount) external returns (bool) {
        _spendAllowance(_from, msg.sender, _amount);
        _transfer(_from, _to, _amount);
        return true;
    }

    function approve(address _spender, uint256 _amount) external returns (bool) {
        _approve(msg.sender, _spender, _amount);
        return true;
    }

    function increaseAllowance(address _spender, uint256 _addedValue) external returns (bool) {
        _approve(msg.sender, _spender, allowance[msg.sender][_spender] + _addedValue);
        return true;
    }

    function decreaseAllowance(address _spender, uint256 _subtractedValue) external returns (bool) {
        uint256 current = allowance[msg.sender][_spender];
        require(current >= _subtractedValue, "ERC20: decreased allowance below zero");
        _approve(msg.sender, _spender, current - _subtractedValue);
        return true;
    }

    // Mint and burn

    function mint(address _to, uint256 _amount) external onlyRole(MINTER_ROLE) {
        require(_to != address(0), "ERC20: mint to the zero address");
        totalSupply += _amount;
        balanceOf[_to] += _amount;
        emit Transfer(address(0), _to, _amount);
        emit Mint(_to, _amount);
    }

    function burn(uint256 _amount) external onlyRole(BURNER_ROLE) {
        _burn(msg.sender, _amount);
    }

    function burnFrom(address _from, uint256 _amount) external onlyRole(BURNER_ROLE) {
        _spendAllowance(_from, msg.sender, _amount);
        _burn(_from, _amount);
    }

    // EIP-2612

    function permit(
        address _owner,
        address _spender,
        uint256 _value,
        uint256 _deadline,
        uint8 _v,
        bytes32 _r,
        bytes32 _s
    ) external {
        require(block.timestamp <= _deadline, "ERC20Permit: expired deadline");
        bytes32 structHash = keccak256(
            abi.encode(PERMIT_TYPEHASH, _owner, _spender, _value, nonces[_owner], _deadline)
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), structHash));
        require(ECDSA.recover(digest, _v, _r, _s) == _owner, "ERC20Permit: invalid signature");
        nonces[_owner] += 1;
        _approve(_owner, _spender, _value);
    }

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return
            keccak256(
                abi.encode(
                    DOMAIN_TYPEHASH,
                    keccak256(bytes(name)),
                    keccak256(bytes(DOMAIN_VERSION)),
                    block.chainid,
                    address(this)
                )
            );
    }

    /// EIP-5267: name, version, chainId and verifyingContract are used (fields 0x0f).
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name_,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", name, DOMAIN_VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    // Roles

    function hasRole(bytes32 _role, address _account) public view returns (bool) {
        return roles[_role][_account];
    }

    function getRoleAdmin(bytes32 _role) public view returns (bytes32) {
        return roleAdmins[_role];
    }

    function grantRole(bytes32 _role, address _account) external onlyRole(getRoleAdmin(_role)) {
        _grantRole(_role, _account);
    }

    function revokeRole(bytes32 _role, address _account) external onlyRole(getRoleAdmin(_role)) {
        _revokeRole(_role, _account);
    }

    function renounceRole(bytes32 _role, address _account) external {
        require(_account == msg.sender, "AccessControl: can only renounce roles for self");
        _revokeRole(_role, _account);
    }

    function supportsInterface(bytes4 _interfaceId) external pure returns (bool) {
        // IAccessControl, IERC165
        return _interfaceId == 0x7965db0b || _interfaceId == 0x01ffc9a7;
    }

    // Internals

    function _transfer(address _from, address _to, uint256 _amount) internal {
        require(_from != address(0), "ERC20: transfer from the zero address");
        require(_to != address(0), "ERC20: transfer to the zero address");
        uint256 balance = balanceOf[_from];
        require(balance >= _amount, "ERC20: transfer amount exceeds balance");
        unchecked {
            balanceOf[_from] = balance - _amount;
        }
        balanceOf[_to] += _amount;
        emit Transfer(_from, _to, _amount);
    }

    function _burn(address _from, uint256 _amount) internal {
        uint256 balance = balanceOf[_from];
        require(balance >= _amount, "ERC20: burn amount exceeds balance");
        unchecked {
            balanceOf[_from] = balance - _amount;
            totalSupply -= _amount;
        }
        emit Transfer(_from, address(0), _amount);
        emit Burn(_from, _amount);
    }

    function _approve(address _owner, address _spender, uint256 _amount) internal {
        require(_owner != address(0), "ERC20: approve from the zero address");
        require(_spender != address(0), "ERC20: approve to the zero address");
        allowance[_owner][_spender] = _amount;
        emit Approval(_owner, _spender, _amount);
    }

    function _spendAllowance(address _owner, address _spender, uint256 _amount) internal {
        uint256 current = allowance[_owner][_spender];
        if (current != type(uint256).max) {
            require(current >= _amount, "ERC20: insufficient allowance");
            unchecked {
                _approve(_owner, _spender, current - _amount);
            }
        }
    }

    function _grantRole(bytes32 _role, address _account) internal {
        if (!roles[_role][_account]) {
            roles[_role][_account] = true;
            emit RoleGranted(_role, _account, msg.sender);
        }
    }

    function _revokeRole(bytes32 _role, address _account) internal {
        if (roles[_role][_account]) {
            roles[_role][_account] = false;
            emit RoleRevoked(_role, _account, msg.sender);
        }
    }

    /// Reverts with OpenZeppelin's message: "AccessControl: account 0x… is missing role 0x…".
    function _checkRole(bytes32 _role, address _account) internal view {
        if (!roles[_role][_account]) {
            revert(
                string(
                    abi.encodePacked(
                        "AccessControl: account ",
                        _toHex(uint256(uint160(_account)), 20),
                        " is missing role ",
                        _toHex(uint256(_role), 32)
                    )
                )
            );
        }
    }

    function _toHex(uint256 _value, uint256 _length) internal pure returns (string memory) {
        bytes memory digits = "0123456789abcdef";
        bytes memory out = new bytes(2 + 2 * _length);
        out[0] = "0";
        out[1] = "x";
        for (uint256 i = 2 * _length + 1; i > 1; --i) {
            out[i] = digits[_value & 0xf];
            _value >>= 4;
        }
        return string(out);
    }
}
